# frozen_string_literal: true

# Sidekiq jobs that run only after the PostgreSQL transaction that pushed
# them commits.
#
#   require "tx_barrier/sidekiq"
#   TxBarrier::Sidekiq.install          # client and server middleware
#
#   ActiveRecord::Base.transaction do
#     order.update!(status: "paid")
#     InvoiceJob.perform_async(order.id)  # pushed now, runs after COMMIT
#   end
#
# The client middleware sees a job pushed while the thread's Active Record
# connection is in an open transaction, takes a barrier token on it
# (barrier_enqueue()) and puts it in the job payload ("tx_barrier_token");
# the job is pushed at once, before COMMIT.  The server middleware, before
# the job runs, waits for the token's transaction (barrier_wait()) for at
# most TxBarrier.config.wait_timeout seconds, on the worker's own Active
# Record connection or on TxBarrier.config.dsn:
#
# * committed: the job runs;
# * aborted (rollback, a rolled-back savepoint, the producer died before
#   COMMIT): the job is not run and not retried; one INFO line says so;
# * still open: the job is pushed again into Sidekiq's scheduled set (same
#   jid, same token, "tx_barrier_waits" counting the delays), so no worker
#   thread is held meanwhile.
#
# A job that raised after it got past the barrier is retried by Sidekiq
# without one: the client middleware drops the token from the retry when
# Sidekiq pushes it again, and the server middleware never waits for a
# payload that records an error of the job's own.

require "sidekiq"
require_relative "integration"

module TxBarrier
  module Sidekiq
    # Payload key of the token (an xid8 as a decimal string).
    TOKEN_KEY = "tx_barrier_token"
    # Payload key counting how many times the job was rescheduled because
    # its transaction was still open.
    WAITS_KEY = "tx_barrier_waits"
    # Job option: false opts a job out of the automatic barrier, true takes
    # one even when TxBarrier.config.auto is off.
    OPTION_KEY = "tx_barrier"
    # Active Job's Sidekiq wrapper carries the Active Job integration's
    # token inside its first argument (the serialized job) instead.
    ACTIVE_JOB_TOKEN_KEY = "tx_barrier_token"

    class << self
      # Adds the client middleware (in clients and servers: jobs push jobs)
      # and the server middleware, first in the server chain (so that what
      # raises after it is the job's own error).  Takes the TxBarrier.config
      # block, if given.
      def install(&block)
        TxBarrier.configure(&block) if block
        ::Sidekiq.configure_client do |config|
          config.client_middleware { |chain| chain.add ClientMiddleware }
        end
        ::Sidekiq.configure_server do |config|
          config.client_middleware { |chain| chain.add ClientMiddleware }
          config.server_middleware { |chain| chain.prepend ServerMiddleware }
        end
        warn_transactional_push
      end

      # Sidekiq.transactional_push! (Sidekiq 6.5 and later) pushes after
      # COMMIT, when there is no transaction left to take a barrier in: the
      # two must not both apply.
      def warn_transactional_push
        return unless ::Sidekiq.respond_to?(:default_job_options)

        client = ::Sidekiq.default_job_options["client_class"]
        return unless client.to_s.include?("TransactionAwareClient")

        TxBarrier.config.logger.warn(
          "tx_barrier: Sidekiq.transactional_push! is on: jobs are pushed after COMMIT, " \
          "without a barrier; remove it (the barrier pushes before COMMIT instead)"
        )
      end

      # The token a job payload carries, or nil.
      def token(job)
        TxBarrier.normalize_token(job[TOKEN_KEY])
      end

      # Inside a job's perform: what the server middleware did for it, a
      # Hash (token:, state:, waits: the reschedules before it ran,
      # waited: false when no barrier was checked, as for a retry), or nil
      # outside a job or for a job without a token.
      def current
        Thread.current[:tx_barrier_sidekiq]
      end

      # Does the payload record an error the job raised after it got past
      # the barrier (a retry of the job's own error)?  The barrier's own
      # errors are TxBarrier:: classes.
      def own_error_retry?(job)
        klass = job["error_class"]
        !klass.nil? && !klass.to_s.start_with?("TxBarrier::")
      end

      def testing?
        defined?(::Sidekiq::Testing) && ::Sidekiq::Testing.enabled?
      end
    end

    # Takes the barrier when a job is pushed inside an open transaction.
    class ClientMiddleware
      def call(_worker_class, job, _queue, _redis_pool)
        take_barrier(job)
        yield
      end

      private

      def take_barrier(job)
        if job.key?(TOKEN_KEY)
          # A retry of the job's own error, pushed again by Sidekiq: it got
          # past the barrier before, and carries none.  Reschedules and
          # scheduled jobs keep the token they have.
          job.delete(TOKEN_KEY) if Sidekiq.own_error_retry?(job)
          return
        end
        return if Sidekiq.own_error_retry?(job)

        option = job[OPTION_KEY]
        return if option == false
        return if Sidekiq.testing?
        return if active_job_barrier?(job)

        conn = TxBarrier.producer_connection
        return unless conn

        unless option == true || TxBarrier.config.auto
          TxBarrier.config.logger.warn(
            "tx_barrier: #{job["wrapped"] || job["class"]} pushed inside an open " \
            "transaction without a barrier (TxBarrier.config.auto is off): it may run " \
            "before COMMIT or after a rollback; push it with the job option tx_barrier: true"
          )
          return
        end
        job[TOKEN_KEY] = TxBarrier.enqueue(conn)
      end

      # The Active Job integration took (or decided) the barrier already.
      def active_job_barrier?(job)
        first = job["args"]&.first
        job.key?("wrapped") && first.is_a?(Hash) && first.key?(ACTIVE_JOB_TOKEN_KEY)
      end
    end

    # Waits for the job's token before the job runs.
    class ServerMiddleware
      def call(_worker, job, _queue, &block)
        token = Sidekiq.token(job)
        return yield if token.nil?

        if Sidekiq.own_error_retry?(job)
          return run(block, token: token, state: COMMITTED, waits: job[WAITS_KEY].to_i,
                            waited: false)
        end

        config = TxBarrier.config
        begin
          state = TxBarrier.with_wait_connection do |c|
            TxBarrier.wait(c, token, timeout: config.wait_timeout)
          end
        rescue StandardError => e
          unless TxBarrier.transient?(e)
            raise if e.is_a?(TxBarrier::Error)

            # Named as the barrier's, so that its retry waits again.
            raise TxBarrier::Error.new("barrier wait for token #{token} failed: " \
                                       "#{e.class}: #{e.message.strip}",
                                       sqlstate: TxBarrier.sqlstate_of(e))
          end

          config.logger.warn("tx_barrier: #{describe(job)}: barrier wait for token #{token} " \
                             "failed (#{e.class}: #{e.message.strip}), rescheduled")
          return reschedule(job, token, config.error_delay, e.message.strip)
        end

        case state
        when COMMITTED
          run(block, token: token, state: state, waits: job[WAITS_KEY].to_i, waited: true)
        when ABORTED
          config.logger.info("tx_barrier: #{describe(job)} not run: the transaction of " \
                             "token #{token} rolled back")
          config.on_abort&.call(job, token)
          nil
        else
          reschedule(job, token, config.delay,
                     "still in progress after #{config.wait_timeout}s")
        end
      end

      private

      def run(block, **info)
        previous = Thread.current[:tx_barrier_sidekiq]
        Thread.current[:tx_barrier_sidekiq] = info
        block.call
      ensure
        Thread.current[:tx_barrier_sidekiq] = previous
      end

      def describe(job)
        "#{job["wrapped"] || job["class"]} jid=#{job["jid"]}"
      end

      # Pushes the job again into the scheduled set, unchanged but for the
      # delay counter: the same jid and token.
      def reschedule(job, token, delay, reason)
        waits = job[WAITS_KEY].to_i + 1
        limit = TxBarrier.config.max_delays
        if limit && waits > limit
          raise TxBarrier::Timeout.new("gave up on #{describe(job)} after #{limit} barrier " \
                                       "delays: token #{token} #{reason}", token: token)
        end

        payload = job.merge(WAITS_KEY => waits, "at" => Time.now.to_f + delay.to_f)
        payload.delete("enqueued_at")
        ::Sidekiq::Client.push(payload)
        TxBarrier.config.logger.info("tx_barrier: #{describe(job)}: token #{token} #{reason}; " \
                                     "rescheduled in #{delay}s (delay #{waits})")
        nil
      end
    end
  end
end
