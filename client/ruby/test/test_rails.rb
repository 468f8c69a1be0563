# frozen_string_literal: true

# Active Job in a Rails application (test/rails_app: an initializer
# installs the barrier, ApplicationJob includes TxBarrier::ActiveJob, the
# framework defaults of the Rails it runs on) with its own Sidekiq worker
# (queue rails) and producer processes (test/rails_app/produce.rb, and
# test/rails_app/kill_producer.rb for the producer killed with SIGKILL).
require_relative "suite"
require "open3"

class TestRails < Minitest::Test
  # Rails 7.2 defers the enqueue of jobs with enqueue_after_transaction_commit
  # (the default of its framework defaults on the Sidekiq adapter).
  DEFERS = ActiveJob.gem_version >= Gem::Version.new("7.2")

  def produce
    prefix = new_tag
    out, err, status = Open3.capture3({ "RAILS_ENV" => "production" }, "ruby",
                                      File.join(__dir__, "rails_app", "produce.rb"), prefix)
    assert status.success?, "produce.rb failed: #{err}"
    assert_equal "done", out.lines.last&.strip, err
    out.lines.grep(/\Ajob /).to_h do |line|
      _, scenario, tag, job_id, token, before, ptoken = line.split
      [scenario, { tag: tag, job_id: job_id, token: token == "-" ? nil : token,
                   before: before == "true", payload_token: ptoken == "-" ? nil : ptoken }]
    end
  end

  def test_rails_application
    jobs = produce
    commit = jobs.fetch("commit")
    assert commit[:token], "ApplicationJob takes a barrier"
    assert commit[:before], "and is pushed before COMMIT"
    run = wait_runs(commit[:tag]).first
    assert_equal ["aj", true, commit[:job_id], commit[:token], "rails"],
                 [run.kind, run.visible, run.jid, run.token, run.role]

    assert_equal %w[aborted], wait_runs(jobs.fetch("rollback")[:tag]).map(&:kind)
    assert_equal %w[aborted], wait_runs(jobs.fetch("savepoint")[:tag]).map(&:kind)
    assert_equal [["aj", true]], wait_runs(jobs.fetch("outer")[:tag]).map { |r| [r.kind, r.visible] }
    refute_equal jobs["savepoint"][:token], jobs["outer"][:token]

    plain = jobs.fetch("plain")
    deferred = jobs.fetch("deferred")
    if DEFERS
      # Rails enqueues these after COMMIT: no barrier (none is needed, and
      # a push after COMMIT has lost the guarantee of running if the
      # process dies in between).
      assert_equal [false, nil], [plain[:before], plain[:payload_token]]
      assert_equal [false, nil, nil], [deferred[:before], deferred[:token], deferred[:payload_token]]
    else
      # No enqueue_after_transaction_commit: pushed before COMMIT, with the
      # Sidekiq middleware's barrier (PlainJob) or Active Job's (DeferredJob).
      assert plain[:before]
      assert_match(/\A\d+\z/, plain[:payload_token].to_s)
      assert deferred[:before]
      assert_equal deferred[:token], deferred[:payload_token]
    end
  end

  # A producer of the Rails application (kill_producer.rb MODE TAG ID) in a
  # process of its own; returns once it printed its job's line.  Its
  # stderr (Active Record's log on Rails 7.2) is kept for the failure
  # messages, in @producer_err.
  def spawn_producer(mode, tag, id)
    stdin, stdout, stderr, thr = Open3.popen3({ "RAILS_ENV" => "production" }, "ruby",
                                              File.join(__dir__, "rails_app", "kill_producer.rb"),
                                              mode, tag, id.to_s)
    @producer_err = Thread.new { stderr.read.tap { stderr.close } }
    line = stdout.gets
    line = stdout.gets until line.nil? || line.start_with?("job ")
    flunk "kill_producer.rb #{mode} ended without printing its job: #{@producer_err.value}" if line.nil?
    _, job_id, token = line.split
    [stdin, stdout, thr, job_id, token == "-" ? nil : token]
  end

  # Yields a producer of spawn_producer (its stdin, its thread, the job id
  # and token) and kills it if it still runs when the block ends.
  def with_producer(mode, tag, id)
    stdin, stdout, thr, job_id, token = spawn_producer(mode, tag, id)
    yield stdin, thr, job_id, token
  ensure
    Process.kill(:KILL, thr.pid) if thr&.alive?
    stdin&.close
    stdout&.close
  end

  # Lets the producer commit; it kills itself as soon as COMMIT returns.
  def commit_and_die(stdin, thr)
    stdin.puts "commit"
    stdin.flush
    assert_killed(thr)
  end

  # Sidekiq's entries (queued, scheduled, to retry, dead) of the Active Job
  # job JOB_ID: what can still run it.
  def entries(job_id)
    sets = [Sidekiq::Queue.new("rails"), Sidekiq::Queue.new("rails_parked"),
            Sidekiq::ScheduledSet.new, Sidekiq::RetrySet.new, Sidekiq::DeadSet.new]
    sets.flat_map do |set|
      set.select { |e| e.args.first.is_a?(Hash) && e.args.first["job_id"] == job_id }
    end
  end

  def assert_killed(thr)
    status = thr.value
    assert status.signaled?, "the producer was killed (#{status.inspect}): #{@producer_err.value}"
    assert_equal Signal.list["KILL"], status.termsig
  end

  # Killed while its transaction is open, the worker waiting on its token:
  # the job is dropped as after a rollback (on_abort's row), before Active
  # Job looks its item up, and neither retried nor put back.
  def test_producer_killed_before_commit
    tag = new_tag
    id = new_id
    with_producer("hold", tag, id) do |_stdin, thr, job_id, token|
      assert token, "ApplicationJob takes a barrier"
      wait_until("the worker to wait for #{token}") { waiting_for?(token) }
      Process.kill(:KILL, thr.pid)
      assert_killed(thr)
      rows = wait_runs(tag)
      assert_equal [["aborted", "RecordRailsJob", token, "rails"]],
                   rows.map { |r| [r.kind, r.job, r.token, r.role] }
      refute Item.exists?(id)
      assert_empty entries(job_id)
    end
  end

  # Killed as soon as its COMMIT returned, the worker waiting on its token
  # meanwhile: the job, in Redis since before COMMIT, runs once and sees
  # its item.
  def test_producer_killed_right_after_commit
    tag = new_tag
    id = new_id
    with_producer("commit-kill", tag, id) do |stdin, thr, job_id, token|
      assert token, "ApplicationJob takes a barrier"
      wait_until("the worker to wait for #{token}") { waiting_for?(token) }
      commit_and_die(stdin, thr)
      run = wait_runs(tag).first
      assert_equal ["aj", true, job_id, token, id, "rails"],
                   [run.kind, run.visible, run.jid, run.token, run.item_id, run.role]
      # Running it took its only entry out of Redis: no copy is left to
      # run it again.
      assert_empty entries(job_id)
      assert_equal 1, runs(tag).size
    end
  end

  # The contrast: an Active Job class without TxBarrier::ActiveJob, its
  # producer killed at the same point.  On Rails 7.2 Rails would enqueue it
  # from an after-commit callback, which never ran: the transaction
  # committed and the job is nowhere (its queue, rails_parked, has no
  # worker: nothing can have taken it).  On 6.1 it was pushed before
  # COMMIT, with the Sidekiq middleware's barrier.
  def test_deferred_job_lost_when_killed_right_after_commit
    tag = new_tag
    id = new_id
    with_producer("plain-commit-kill", tag, id) do |stdin, thr, job_id, token|
      assert_nil token
      before = entries(job_id)
      commit_and_die(stdin, thr)
      assert Item.exists?(id), "the producer's transaction committed"
      found = entries(job_id)
      if DEFERS
        assert_empty before, "Rails 7.2 defers its enqueue to after COMMIT"
        assert_empty found, "and the producer died before it: the job is lost"
      else
        assert_equal [["rails_parked", true]],
                     found.map { |e| [e.queue, e.item["tx_barrier_token"].to_s.match?(/\A\d+\z/)] }
        assert_equal before.map(&:value), found.map(&:value), "pushed before COMMIT"
      end
    ensure
      found&.each(&:delete)
    end
  end
end
