# frozen_string_literal: true

# The producer of the Rails application's tests: boots the application
# (its initializer installs the barrier), enqueues Active Job jobs inside
# transactions and prints one line per job for the test to check:
#   job SCENARIO TAG JOB_ID TOKEN BEFORE_COMMIT PAYLOAD_TOKEN
# TOKEN is the job's barrier token (- for none); BEFORE_COMMIT whether the
# job was in Redis before COMMIT (the worker waiting for it, or the job in
# the parked queue); PAYLOAD_TOKEN the token its Sidekiq payload carries
# (Active Job's or the middleware's, - for none).
#   ruby test/rails_app/produce.rb PREFIX
require_relative "config/environment"
require "sidekiq/api"

prefix = ARGV.fetch(0)
deadline = Float(ENV.fetch("TXB_RB_DEADLINE", "120"))
observer = PG.connect(host: ENV.fetch("PGHOST", "127.0.0.1"), port: ENV.fetch("PGPORT", "5432"),
                      dbname: ENV.fetch("TXB_RB_DB", "txb_ruby"), user: ENV.fetch("PGUSER", "postgres"))
conn = ActiveRecord::Base.connection

until_true = lambda do |what, &cond|
  stop = Process.clock_gettime(Process::CLOCK_MONOTONIC) + deadline
  until cond.call
    abort "produce.rb: timed out waiting for #{what}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > stop
    sleep 0.02
  end
end
worker_waits = lambda do |token|
  observer.exec_params(<<~SQL, [token]).getvalue(0, 0) == "t"
    SELECT count(*) > 0 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
     WHERE l.locktype = 'transactionid' AND NOT l.granted AND a.query LIKE '%barrier_wait%'
       AND l.transactionid::text = (($1::xid8::text)::numeric % 4294967296)::text
  SQL
end
parked = ->(job_id) { Sidekiq::Queue.new("rails_parked").find { |e| e.args.first["job_id"] == job_id } }
payload_token = lambda do |entry|
  entry.item["tx_barrier_token"] || entry.args.first["tx_barrier_token"] || "-"
end
new_id = -> { conn.select_value("SELECT nextval('ruby_ids')").to_i }
report = lambda do |scenario, tag, job, before, ptoken|
  token = job.respond_to?(:tx_barrier_token) ? job.tx_barrier_token : nil
  $stdout.puts ["job", scenario, tag, job.job_id, token || "-", before, ptoken || "-"].join(" ")
  $stdout.flush
end

# commit and rollback: the worker (queue rails) waits before COMMIT, before
# it looks the item up (GlobalID), which does not exist before COMMIT.
%w[commit rollback].each do |scenario|
  tag = "#{prefix}-#{scenario}"
  ActiveRecord::Base.transaction do
    id = new_id.call
    item = Item.create!(id: id, tag: tag)
    job = RecordRailsJob.perform_later(tag, item)
    until_true.call("the worker to wait for #{job.tx_barrier_token}") { worker_waits.call(job.tx_barrier_token) }
    report.call(scenario, tag, job, true, job.tx_barrier_token)
    raise ActiveRecord::Rollback if scenario == "rollback"
  end
end

# A rolled-back savepoint inside a committed transaction.
ActiveRecord::Base.transaction do
  tag = "#{prefix}-savepoint"
  ActiveRecord::Base.transaction(requires_new: true) do
    id = new_id.call
    item = Item.create!(id: id, tag: tag)
    job = RecordRailsJob.perform_later(tag, item)
    report.call("savepoint", tag, job, true, job.tx_barrier_token)
    raise ActiveRecord::Rollback
  end
  tag = "#{prefix}-outer"
  id = new_id.call
  item = Item.create!(id: id, tag: tag)
  job = RecordRailsJob.perform_later(tag, item)
  report.call("outer", tag, job, true, job.tx_barrier_token)
end

# Jobs of the parked queue: where is each before and after COMMIT?
[%w[plain PlainJob], %w[deferred DeferredJob]].each do |scenario, klass|
  tag = "#{prefix}-#{scenario}"
  job = nil
  before = nil
  ActiveRecord::Base.transaction do
    id = new_id.call
    item = Item.create!(id: id, tag: tag)
    job = Object.const_get(klass).perform_later(tag, klass == "PlainJob" ? id : item)
    before = !parked.call(job.job_id).nil?
  end
  until_true.call("#{klass} #{job.job_id} in the parked queue") { parked.call(job.job_id) }
  entry = parked.call(job.job_id)
  report.call(scenario, tag, job, before, payload_token.call(entry))
  entry.delete
end
$stdout.puts "done"
