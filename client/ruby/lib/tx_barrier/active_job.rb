# frozen_string_literal: true

# Active Job jobs that run only after the PostgreSQL transaction that
# enqueued them commits, with any queue adapter.
#
#   require "tx_barrier/active_job"
#
#   class ApplicationJob < ActiveJob::Base
#     include TxBarrier::ActiveJob
#   end
#
#   ActiveRecord::Base.transaction do
#     order.update!(status: "paid")
#     InvoiceJob.perform_later(order)   # enqueued now, runs after COMMIT
#   end
#
# around_enqueue takes a barrier token when the job is enqueued inside an
# open transaction of TxBarrier.config.connection_class's database and keeps
# it in the job's serialized data ("tx_barrier_token"); the adapter enqueues
# the job at once, before COMMIT.  perform_now waits for the token before
# anything else -- before the arguments are deserialized, so that a record
# passed by GlobalID is looked up only once its transaction has committed --
# for at most TxBarrier.config.wait_timeout seconds:
#
# * committed: perform runs (a later retry_on retry of the same job carries
#   no token: it got past the barrier);
# * aborted: perform does not run (nor do the perform callbacks, nor the
#   arguments' deserialization) and the job is not retried; one INFO line;
# * still open: retry_job(wait: TxBarrier.config.delay) with the same
#   token, counted in "tx_barrier_waits" and not in executions.
#
# Rails 7.2's enqueue_after_transaction_commit defers the enqueue itself to
# after COMMIT: the barrier replaces it, so including this module sets it to
# :never for the class.  A class that turns it on again gets no barrier (and
# a warning): the job is then enqueued after COMMIT, as Rails does it.

require "active_job"
require_relative "integration"

module TxBarrier
  module ActiveJob
    TOKEN_KEY = "tx_barrier_token"
    WAITS_KEY = "tx_barrier_waits"

    # The value of enqueue_after_transaction_commit that enqueues at once.
    def self.enqueue_at_once_value
      ::ActiveJob.gem_version < Gem::Version.new("8.0") ? :never : false
    end

    def self.included(base)
      if base.respond_to?(:enqueue_after_transaction_commit=)
        base.enqueue_after_transaction_commit = enqueue_at_once_value
      end
      base.around_enqueue do |job, block|
        job.send(:tx_barrier_take)
        block.call
      end
    end

    # Waits for the barrier, then runs the job as Active Job does (the
    # arguments deserialized, the perform callbacks, retry_on).
    def perform_now
      tx_barrier_perform { super }
    end

    # The barrier token of this job, or nil.
    attr_accessor :tx_barrier_token
    # How many times this job was put back because its transaction was
    # still open.
    attr_writer :tx_barrier_waits

    def tx_barrier_waits
      @tx_barrier_waits || 0
    end

    # The token travels in the serialized job until the job has got past
    # the barrier: a retry of the job's own error (retry_on, retry_job from
    # perform) carries none.
    def serialize
      data = super
      if tx_barrier_token && !@tx_barrier_passed
        data[TOKEN_KEY] = tx_barrier_token
        data[WAITS_KEY] = tx_barrier_waits
      end
      data
    end

    def deserialize(job_data)
      super
      @tx_barrier_token = TxBarrier.normalize_token(job_data[TOKEN_KEY])
      @tx_barrier_waits = job_data[WAITS_KEY].to_i
      @tx_barrier_passed = false
    end

    private

    # Does Active Job defer this enqueue until after COMMIT (Rails 7.2's
    # enqueue_after_transaction_commit)?
    def tx_barrier_deferred?
      return false unless defined?(::ActiveJob::EnqueueAfterTransactionCommit) &&
                          is_a?(::ActiveJob::EnqueueAfterTransactionCommit)

      case self.class.enqueue_after_transaction_commit
      when :always, true then true
      when :never, false, nil then false
      else queue_adapter.respond_to?(:enqueue_after_transaction_commit?) &&
           queue_adapter.enqueue_after_transaction_commit?
      end
    end

    def tx_barrier_take
      # Our retry_job keeps the token it has; a job that got past the
      # barrier takes no new one.
      return if tx_barrier_token || @tx_barrier_passed

      config = TxBarrier.config
      return unless config.auto

      conn = TxBarrier.producer_connection
      return unless conn

      if tx_barrier_deferred?
        config.logger.warn(
          "tx_barrier: #{self.class.name} has enqueue_after_transaction_commit on: it is " \
          "enqueued after COMMIT, without a barrier (set it to " \
          "#{TxBarrier::ActiveJob.enqueue_at_once_value.inspect} to enqueue it before " \
          "COMMIT with one)"
        )
        return
      end
      self.tx_barrier_token = TxBarrier.enqueue(conn)
    end

    def tx_barrier_perform
      token = tx_barrier_token
      return yield if token.nil? || @tx_barrier_passed

      config = TxBarrier.config
      begin
        state = TxBarrier.with_wait_connection do |c|
          TxBarrier.wait(c, token, timeout: config.wait_timeout)
        end
      rescue StandardError => e
        raise unless TxBarrier.transient?(e)

        config.logger.warn("tx_barrier: #{self.class.name} job_id=#{job_id}: barrier wait " \
                           "for token #{token} failed (#{e.class}: #{e.message.strip}), " \
                           "retrying")
        return tx_barrier_put_back(token, config.error_delay, e.message.strip)
      end

      case state
      when COMMITTED
        @tx_barrier_passed = true
        yield
      when ABORTED
        config.logger.info("tx_barrier: #{self.class.name} job_id=#{job_id} not run: the " \
                           "transaction of token #{token} rolled back")
        config.on_abort&.call(self, token)
        nil
      else
        tx_barrier_put_back(token, config.delay,
                            "still in progress after #{config.wait_timeout}s")
      end
    end

    def tx_barrier_put_back(token, delay, reason)
      waits = tx_barrier_waits + 1
      limit = TxBarrier.config.max_delays
      if limit && waits > limit
        raise TxBarrier::Timeout.new("gave up on #{self.class.name} job_id=#{job_id} after " \
                                     "#{limit} barrier delays: token #{token} #{reason}",
                                     token: token)
      end

      self.tx_barrier_waits = waits
      TxBarrier.config.logger.info("tx_barrier: #{self.class.name} job_id=#{job_id}: token " \
                                   "#{token} #{reason}; enqueued again in #{delay}s " \
                                   "(delay #{waits})")
      retry_job(wait: delay.to_f)
      nil
    end
  end
end
