# frozen_string_literal: true

# The Active Job integration: on the Sidekiq adapter (the worker of role
# main runs the jobs), on the async adapter (threads of this process, which
# wait here), and Active Job on Sidekiq without it (the middleware's
# barrier).
require_relative "suite"

class TestActiveJob < Minitest::Test
  def setup
    # This process's own waits (the async adapter's jobs).
    TxBarrier.config.wait_timeout = 1.0
    TxBarrier.config.delay = 0.5
  end

  def conn
    ActiveRecord::Base.connection
  end

  def produce(klass, rollback: false)
    tag = new_tag
    id = new_id
    job = nil
    ActiveRecord::Base.transaction do
      Item.create!(id: id, tag: tag)
      job = klass.perform_later(tag, id)
      yield job if block_given?
      raise ActiveRecord::Rollback if rollback
    end
    [tag, job]
  end

  [BarrierAJob, AsyncAJob, PlainAJob].each do |klass|
    define_method("test_#{klass.name}_commit") do
      tag, job = produce(klass) do |j|
        assert_equal TxBarrier.enqueue(conn), j.tx_barrier_token if j.respond_to?(:tx_barrier_token)
      end
      run = wait_runs(tag).first
      assert_equal ["aj", true, job.job_id], [run.kind, run.visible, run.jid]
    end

    define_method("test_#{klass.name}_rollback") do
      tag, job = produce(klass, rollback: true) do
        token = TxBarrier.enqueue(conn)
        wait_until("the job to wait") { waiting_for?(token) }
      end
      rows = wait_runs(tag)
      assert_equal %w[aborted], rows.map(&:kind)
      assert_equal job.job_id, rows.first.jid
    end
  end

  def test_savepoint_on_the_async_adapter
    tag = new_tag
    ActiveRecord::Base.transaction do
      ActiveRecord::Base.transaction(requires_new: true) do
        id = new_id
        Item.create!(id: id, tag: tag)
        AsyncAJob.perform_later(tag, id)
        raise ActiveRecord::Rollback
      end
    end
    assert_equal %w[aborted], wait_runs(tag).map(&:kind)
  end

  def test_retry_on_carries_no_barrier
    token = nil
    tag, = produce(RetryAJob) { |j| token = j.tx_barrier_token }
    first, second = wait_runs(tag, 2)
    assert_equal [0, token, true], [first.attempt, first.token, first.visible]
    assert_equal [1, nil, true], [second.attempt, second.token, second.visible]
  end

  [BarrierAJob, AsyncAJob].each do |klass|
    define_method("test_#{klass.name}_open_past_the_bound_is_enqueued_again") do
      tag, = produce(klass) do |job|
        # Put back with retry_job(wait:) while the transaction is open:
        # for Sidekiq, into the scheduled set.
        if klass == BarrierAJob
          wait_until("the job in the scheduled set") do
            Sidekiq::ScheduledSet.new.any? do |e|
              e.args.first.is_a?(Hash) && e.args.first["job_id"] == job.job_id &&
                e.args.first["tx_barrier_waits"].to_i >= 1
            end
          end
        else
          wait_until("the job enqueued again") do
            LOG.lines.any? { |l| l.include?("job_id=#{job.job_id}") && l.include?("enqueued again") }
          end
        end
        assert_empty runs(tag)
      end
      run = wait_runs(tag).first
      assert_equal ["aj", true], [run.kind, run.visible]
      assert_operator run.waits, :>=, 1
    end
  end

  # Rails 7.2's enqueue_after_transaction_commit and the barrier never
  # both apply: the integration sets it to enqueue at once for its jobs
  # (what Rails then does is tested in the Rails application, test_rails.rb).
  if ActiveJob::Base.respond_to?(:enqueue_after_transaction_commit)
    def test_enqueue_after_transaction_commit_is_off_for_barrier_jobs
      assert_equal TxBarrier::ActiveJob.enqueue_at_once_value,
                   BarrierAJob.enqueue_after_transaction_commit
    end
  end
end
