# frozen_string_literal: true

# The Sidekiq worker of the tests: sidekiq -r ./test/worker.rb, with
# TXB_RB_ROLE naming its databases (test/support.rb).
#   main      Active Record on TXB_RB_DB; waits on its own connection;
#             Sidekiq and Active Job jobs
#   bouncer   Active Record and the waits through PgBouncer
#   standby   waits on the hot standby, reads the item there
#   portable  Active Record on the portable edition's database
$LOAD_PATH.unshift(__dir__)
require "support"

role = TestEnv.role
config = case role
         when "main", "standby" then TestEnv.ar_config(TestEnv.db)
         when "bouncer" then TestEnv.ar_config(TestEnv.db, bouncer: true)
         when "portable" then TestEnv.ar_config(TestEnv.portable_db)
         else raise "unknown TXB_RB_ROLE #{role}"
         end
ActiveRecord::Base.establish_connection(config)

TxBarrier::Sidekiq.install do |c|
  c.wait_timeout = 1.0   # a transaction open longer: rescheduled
  c.delay = 0.5
  c.error_delay = 0.5
  c.dsn = ENV.fetch("TXB_RB_STANDBY") if role == "standby"
  c.dsn = TestEnv.dsn(TestEnv.db, bouncer: true) if role == "bouncer"
end

Sidekiq.configure_server do |config|
  # The scheduled set (reschedules, retries) polled every 0.2 s.
  if Sidekiq::VERSION.to_i >= 7
    config[:poll_interval_average] = 0.2
  else
    Sidekiq.options[:poll_interval_average] = 0.2
  end
end

# Outermost server middleware: for jobs pushed with the option
# txb_test_outcome: true, a row saying whether the chain (the barrier's
# middleware, the job) returned or raised -- what Sidekiq's retry, outside
# the chain, acts on.
class OutcomeRecorder
  def call(_worker, job, _queue)
    yield
    record(job, "returned")
  rescue Exception # rubocop:disable Lint/RescueException
    record(job, "raised")
    raise
  end

  def record(job, outcome)
    return unless job["txb_test_outcome"]

    TestJobs.record("outcome-#{outcome}", tag: job["args"][0], job: job["class"], jid: job["jid"])
  end
end
Sidekiq.configure_server do |config|
  config.server_middleware { |chain| chain.prepend OutcomeRecorder }
end

