# frozen_string_literal: true

# The Sidekiq middleware against a real Sidekiq process (test/worker.rb,
# role main: queue "default", wait_timeout 1 s, reschedule delay 0.5 s).
require_relative "suite"
require "open3"

class TestSidekiq < Minitest::Test
  def conn
    ActiveRecord::Base.connection
  end

  def test_commit_job_sees_the_row
    tag = new_tag
    id = new_id
    token = jid = nil
    ActiveRecord::Base.transaction do
      Item.create!(id: id, tag: tag)
      jid = RecordJob.perform_async(tag, id)
      token = TxBarrier.enqueue(conn)
      # Pushed before COMMIT: the worker has it and waits for us.
      wait_until("the worker to wait for #{token}") { waiting_for?(token) }
      assert_empty runs(tag)
    end
    run = wait_runs(tag).first
    assert_equal ["run", true, jid, token, true], [run.kind, run.visible, run.jid, run.token, run.waited]
    assert_equal "main", run.role
  end

  def test_rollback_job_not_run_not_retried
    tag = new_tag
    id = new_id
    jid = nil
    ActiveRecord::Base.transaction do
      Item.create!(id: id, tag: tag)
      jid = RecordJob.set(txb_test_outcome: true).perform_async(tag, id)
      token = TxBarrier.enqueue(conn)
      wait_until("the worker to wait") { waiting_for?(token) }
      raise ActiveRecord::Rollback
    end
    # The job's middleware chain returned (Sidekiq retries what raises).
    outcome = wait_until("the job's outcome") do
      runs(tag).find { |r| r.kind.start_with?("outcome-") }
    end
    assert_equal ["outcome-returned", jid], [outcome.kind, outcome.jid]
    rows = runs(tag).reject { |r| r.kind.start_with?("outcome-") }
    assert_equal [["aborted", jid]], rows.map { |r| [r.kind, r.jid] }
    assert_nil Sidekiq::RetrySet.new.find_job(jid)
    assert_nil Sidekiq::DeadSet.new.find_job(jid)
  end

  def test_rolled_back_savepoint
    tag_a = new_tag
    tag_b = new_tag
    a = new_id
    b = new_id
    ActiveRecord::Base.transaction do
      Item.create!(id: a, tag: tag_a)
      RecordJob.perform_async(tag_a, a)
      ActiveRecord::Base.transaction(requires_new: true) do
        Item.create!(id: b, tag: tag_b)
        RecordJob.perform_async(tag_b, b)
        raise ActiveRecord::Rollback
      end
    end
    assert_equal [["run", true]], wait_runs(tag_a).map { |r| [r.kind, r.visible] }
    assert_equal %w[aborted], wait_runs(tag_b).map(&:kind)
  end

  def test_transaction_open_past_the_bound_is_rescheduled
    tag = new_tag
    id = new_id
    ActiveRecord::Base.transaction do
      Item.create!(id: id, tag: tag)
      jid = RecordJob.perform_async(tag, id)
      # Past the worker's wait_timeout the job waits in the scheduled set,
      # holding no worker thread.
      entry = wait_until("the job in the scheduled set") do
        e = scheduled(jid)
        e if e && e.item["tx_barrier_waits"].to_i >= 1
      end
      assert_equal TxBarrier.enqueue(conn), entry.item["tx_barrier_token"]
      assert_empty runs(tag)
    end
    run = wait_runs(tag).first
    assert_equal ["run", true], [run.kind, run.visible]
    assert_operator run.waits, :>=, 1
  end

  def test_retry_of_the_jobs_own_error_carries_no_barrier
    tag = new_tag
    id = new_id
    token = nil
    ActiveRecord::Base.transaction do
      Item.create!(id: id, tag: tag)
      RecordJob.perform_async(tag, id, 1) # raises once
      token = TxBarrier.enqueue(conn)
    end
    first, second = wait_runs(tag, 2)
    assert_equal [0, token, true], [first.attempt, first.token, first.waited]
    assert_equal [1, nil, nil, true], [second.attempt, second.token, second.waited, second.visible]
  end

  def test_a_retry_payload_runs_without_waiting
    tag = new_tag
    id = new_id
    ActiveRecord::Base.transaction do
      token = TxBarrier.enqueue(conn)
      # What Sidekiq pushes again after the job raised: it got past the
      # barrier before, so it neither waits nor keeps the token.
      Sidekiq::Client.push("class" => RecordJob, "args" => [tag, id], "retry_count" => 0,
                           "error_class" => "RuntimeError", "tx_barrier_token" => token)
      run = wait_runs(tag).first
      assert_equal ["run", false, nil], [run.kind, run.visible, run.token]
      raise ActiveRecord::Rollback
    end
  end

  def test_off_per_job
    tag = new_tag
    ActiveRecord::Base.transaction do
      id = new_id
      Item.create!(id: id, tag: tag)
      RecordJob.set(tx_barrier: false).perform_async(tag, id)
      # No barrier: it runs while the transaction is open.
      run = wait_runs(tag).first
      assert_equal [false, nil], [run.visible, run.token]
      raise ActiveRecord::Rollback
    end
  end

  def test_off_globally_and_on_per_job
    TxBarrier.config.auto = false
    tag = new_tag
    tag_on = new_tag
    ActiveRecord::Base.transaction do
      id = new_id
      Item.create!(id: id, tag: tag)
      RecordJob.perform_async(tag, id)
      assert_equal [false], wait_runs(tag).map(&:visible)
      RecordJob.set(tx_barrier: true).perform_async(tag_on, id)
      token = TxBarrier.enqueue(conn)
      wait_until("the worker to wait") { waiting_for?(token) }
      raise ActiveRecord::Rollback
    end
    assert_equal %w[aborted], wait_runs(tag_on).map(&:kind)
  ensure
    TxBarrier.config.auto = true
  end

  def test_outside_a_transaction_no_barrier
    tag = new_tag
    id = new_id
    Item.create!(id: id, tag: tag)
    jid = RecordJob.perform_async(tag, id)
    run = wait_runs(tag).first
    assert_equal [jid, true, nil], [run.jid, run.visible, run.token]
  end

  def spawn_producer(mode, tag, id)
    stdin, stdout, wait_thr = Open3.popen2("ruby", File.join(__dir__, "producer.rb"), mode, tag, id.to_s)
    # Sidekiq 7 logs to stdout too: the line that starts with "token".
    line = stdout.gets
    line = stdout.gets until line.nil? || line.start_with?("token ")
    flunk "the producer ended without printing its token" if line.nil?
    _, token, jid = line.split
    [stdin, stdout, wait_thr, token, jid]
  end

  def test_producer_killed_before_commit
    tag = new_tag
    id = new_id
    stdin, stdout, thr, token, = spawn_producer("hold", tag, id)
    wait_until("the worker to have the job") { waiting_for?(token) }
    Process.kill(:KILL, thr.pid)
    assert thr.value.signaled?
    assert_equal %w[aborted], wait_runs(tag).map(&:kind)
    refute Item.exists?(id)
  ensure
    stdin&.close
    stdout&.close
  end

  def test_producer_killed_right_after_commit
    tag = new_tag
    id = new_id
    stdin, stdout, thr, token, jid = spawn_producer("commit-kill", tag, id)
    status = thr.value
    assert status.signaled?, "the producer was killed (#{status.inspect})"
    assert_equal Signal.list["KILL"], status.termsig
    run = wait_runs(tag).first
    assert_equal ["run", true, token, jid], [run.kind, run.visible, run.token, run.jid]
  ensure
    stdin&.close
    stdout&.close
  end

  def test_thousand_jobs
    tag = new_tag
    aborted_ids = []
    50.times do |t|
      ActiveRecord::Base.transaction do
        ids = Array.new(20) { new_id }
        ids.each do |id|
          Item.create!(id: id, tag: tag)
          RecordJob.perform_async(tag, id)
        end
        if (t % 5) == 4
          aborted_ids.concat(ids)
          raise ActiveRecord::Rollback
        end
      end
    end
    count = ->(kind) { Run.where(tag: tag, kind: kind).count }
    wait_until("1,000 jobs to end") { count.call("run") + count.call("aborted") >= 1000 }
    assert_equal [800, 200], [count.call("run"), count.call("aborted")]
    assert_equal [true], Run.where(tag: tag, kind: "run").distinct.pluck(:visible)
    assert_empty Run.where(tag: tag, kind: "run", item_id: aborted_ids).pluck(:id)
    assert_equal 1000, Run.where(tag: tag).distinct.count(:jid)
  end
end
