# frozen_string_literal: true

# What the test suite and its Sidekiq worker processes share: the
# databases (from the environment the ruby layer sets), Active Record
# models of the tests' tables, and the jobs.
#
#   PGHOST PGPORT       the server (a socket directory or 127.0.0.1)
#   TXB_RB_DB           database with the extension, the tests' tables
#   TXB_RB_PORTABLE_DB  database with the portable edition on the path
#   TXB_PGBOUNCER_PORT  PgBouncer (transaction pooling) in front of TXB_RB_DB
#   TXB_RB_PRIMARY      conninfo of a primary (own cluster) ...
#   TXB_RB_STANDBY      ... and of its hot standby
#   REDIS_URL           the Redis of Sidekiq
#   TXB_RB_ROLE         in a worker: main, bouncer, standby or portable

require "pg"
require "logger"
require "active_record"
require "active_job"
require "sidekiq"
require "tx_barrier"
require "tx_barrier/sidekiq"
require "tx_barrier/active_job"

# redis-rb 4.8 (beside Sidekiq 6.4) warns about Sidekiq's own calls.
Redis.silence_deprecations = true if defined?(Redis) && Redis.respond_to?(:silence_deprecations=)

module TestEnv
  module_function

  def role
    ENV.fetch("TXB_RB_ROLE", "main")
  end

  def ar_config(database, bouncer: false)
    host = bouncer ? "127.0.0.1" : ENV.fetch("PGHOST", "127.0.0.1")
    port = bouncer ? ENV.fetch("TXB_PGBOUNCER_PORT") : ENV.fetch("PGPORT", "5432")
    { adapter: "postgresql", host: host, port: port.to_i, database: database,
      username: ENV.fetch("PGUSER", "postgres"), pool: 20,
      # PgBouncer in transaction pooling: no named prepared statements
      prepared_statements: !bouncer, advisory_locks: !bouncer }
  end

  def dsn(database, bouncer: false)
    c = ar_config(database, bouncer: bouncer)
    "host=#{c[:host]} port=#{c[:port]} dbname=#{c[:database]} user=#{c[:username]}"
  end

  def db
    ENV.fetch("TXB_RB_DB", "txb_ruby")
  end

  def portable_db
    ENV.fetch("TXB_RB_PORTABLE_DB", "txb_ruby_portable")
  end
end

# The main database (a worker of the portable role writes into its own).
class ApplicationRecord < ActiveRecord::Base
  self.abstract_class = true
end

class Item < ApplicationRecord
  self.table_name = "ruby_items"
end

class Run < ApplicationRecord
  self.table_name = "ruby_runs"
end

# The portable edition's database, seen by the tests.
class PortableRecord < ActiveRecord::Base
  self.abstract_class = true
end

class PortableItem < PortableRecord
  self.table_name = "ruby_items"
end

class PortableRun < PortableRecord
  self.table_name = "ruby_runs"
end

# The main database through PgBouncer, seen by the tests.
class BouncerRecord < ActiveRecord::Base
  self.abstract_class = true
end

class BouncerItem < BouncerRecord
  self.table_name = "ruby_items"
end

module TestJobs
  module_function

  # Where the job reads its item: the standby role reads on the hot
  # standby, after the barrier wait there.
  def item_visible?(item_id)
    if TestEnv.role == "standby"
      @read ||= PG.connect(ENV.fetch("TXB_RB_STANDBY"))
      @read.exec_params("SELECT 1 FROM ruby_items WHERE id = $1", [item_id]).ntuples == 1
    else
      Item.where(id: item_id).exists?
    end
  end

  def record(kind, tag:, job:, jid: nil, item_id: nil, visible: nil, info: nil)
    attempt = jid ? Run.where(jid: jid, kind: kind).count : 0
    Run.create!(tag: tag, kind: kind, job: job, jid: jid, item_id: item_id, visible: visible,
                token: info&.dig(:token), waits: info&.dig(:waits), waited: info&.dig(:waited),
                attempt: attempt, pid: Process.pid, role: TestEnv.role)
    attempt
  end
end

# A Sidekiq job: records that it ran and whether its item was visible;
# raises on its first fail_times runs (retried after a second).
class RecordJob
  include Sidekiq::Worker
  sidekiq_options retry: 3
  sidekiq_retry_in { |_count, _exc| 1 }

  def perform(tag, item_id, fail_times = 0)
    attempt = TestJobs.record("run", tag: tag, job: self.class.name, jid: jid, item_id: item_id,
                                     visible: TestJobs.item_visible?(item_id),
                                     info: TxBarrier::Sidekiq.current)
    raise "failing on purpose (attempt #{attempt})" if attempt < fail_times.to_i
  end
end

# Active Job jobs: with the Active Job integration ...
class BarrierAJob < ActiveJob::Base
  include TxBarrier::ActiveJob
  queue_as :default

  def perform(tag, item_id)
    TestJobs.record("aj", tag: tag, job: self.class.name, jid: job_id, item_id: item_id,
                          visible: TestJobs.item_visible?(item_id),
                          info: { token: tx_barrier_token, waits: tx_barrier_waits,
                                  waited: !tx_barrier_token.nil? })
  end
end

# ... the same on the async adapter (threads of the enqueuing process) ...
class AsyncAJob < BarrierAJob
  self.queue_adapter = :async
end

# ... raising once, retried by retry_on ...
class RetryAJob < AsyncAJob
  retry_on RuntimeError, wait: 0, attempts: 2

  def perform(tag, item_id)
    attempt = super
    raise "failing on purpose" if attempt.zero?
  end
end

# ... and without it: on the Sidekiq adapter, Sidekiq's middleware takes
# the barrier.
class PlainAJob < ActiveJob::Base
  queue_as :default

  def perform(tag, item_id)
    TestJobs.record("aj", tag: tag, job: self.class.name, jid: job_id, item_id: item_id,
                          visible: TestJobs.item_visible?(item_id))
  end
end

ActiveJob::Base.queue_adapter = :sidekiq
ActiveJob::Base.logger = Logger.new($stderr, level: Logger::WARN)

# Dropped jobs leave a row too, so that the tests wait for a condition.
TxBarrier.config.on_abort = lambda do |job, token|
  if job.is_a?(ActiveJob::Base)
    # Not deserialized: an aborted job's arguments are never looked up.
    TestJobs.record("aborted", tag: job.serialize["arguments"][0], job: job.class.name, jid: job.job_id,
                               info: { token: token })
  elsif job["wrapped"] # Active Job on Sidekiq, the middleware's barrier
    data = job["args"][0]
    TestJobs.record("aborted", tag: data["arguments"][0], job: job["wrapped"],
                               jid: data["job_id"], info: { token: token })
  else
    TestJobs.record("aborted", tag: job["args"][0], job: job["class"], jid: job["jid"],
                               info: { token: token })
  end
end
