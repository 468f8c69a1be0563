# frozen_string_literal: true

# The test process: Active Record on the main database (and the portable
# edition's, and PgBouncer's), Sidekiq's client with the barrier's client
# middleware, and what the tests share.  Waits are for conditions,
# with a hang guard (TXB_RB_DEADLINE seconds, default 120), never for time.
$LOAD_PATH.unshift(__dir__)
require "minitest/autorun"
require "securerandom"
require "support"

ActiveRecord::Base.establish_connection(TestEnv.ar_config(TestEnv.db))
PortableRecord.establish_connection(TestEnv.ar_config(TestEnv.portable_db))
BouncerRecord.establish_connection(TestEnv.ar_config(TestEnv.db, bouncer: true))
TxBarrier::Sidekiq.install
# What the integration logs in this process, for the tests to wait on.
class LogLines
  def initialize
    @lines = []
    @mutex = Mutex.new
  end

  def write(line)
    @mutex.synchronize { @lines << line }
    $stderr.write(line) if ENV["TXB_RB_VERBOSE"]
  end

  def close; end

  def lines
    @mutex.synchronize { @lines.dup }
  end
end
LOG = LogLines.new
TxBarrier.config.logger = Logger.new(LOG)
require "sidekiq/api"

module SuiteTools
  DEADLINE = Float(ENV.fetch("TXB_RB_DEADLINE", "120"))

  # Polls the block every 20 ms until it returns a truthy value, which it
  # returns; fails the test after DEADLINE seconds.
  def wait_until(what, deadline: DEADLINE)
    stop = Process.clock_gettime(Process::CLOCK_MONOTONIC) + deadline
    loop do
      value = yield
      return value if value
      flunk "timed out after #{deadline}s waiting for #{what}" if
        Process.clock_gettime(Process::CLOCK_MONOTONIC) > stop
      sleep 0.02
    end
  end

  def new_tag
    "#{name}-#{SecureRandom.hex(4)}"
  end

  def new_id
    ActiveRecord::Base.connection.select_value("SELECT nextval('ruby_ids')").to_i
  end

  def runs(tag, model: Run)
    model.where(tag: tag).order(:id).to_a
  end

  # The rows of TAG once there are COUNT of them (of KIND, if given).
  def wait_runs(tag, count = 1, kind: nil, model: Run)
    wait_until("#{count} #{kind || "run/aborted"} row(s) of #{tag}") do
      rows = runs(tag, model: model)
      rows = rows.select { |r| r.kind == kind } if kind
      rows if rows.size >= count
    end
  end

  def pg(database = TestEnv.db)
    conn = PG.connect(TestEnv.dsn(database))
    (@pg_conns ||= []) << conn
    conn
  end

  def teardown
    (@pg_conns || []).each { |c| c.close unless c.finished? }
    super
  end

  # Is some backend waiting in barrier_wait for TOKEN's transaction (on the
  # main server, asked on one connection of the test)?
  def waiting_for?(token)
    @observer ||= pg
    @observer.exec_params(<<~SQL, [token]).getvalue(0, 0) == "t"
      SELECT count(*) > 0 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
       WHERE l.locktype = 'transactionid' AND NOT l.granted
         AND a.query LIKE '%barrier_wait%'
         AND l.transactionid::text = (($1::xid8::text)::numeric % 4294967296)::text
    SQL
  end

  def scheduled(jid)
    Sidekiq::ScheduledSet.new.find_job(jid)
  end
end

Minitest::Test.include(SuiteTools)

# Every Sidekiq worker the suite needs is running (test/worker.rb, one
# per role, started by the layer).
module WorkersReady
  QUEUES = %w[default bouncer standby portable rails].freeze

  def self.wait
    stop = Process.clock_gettime(Process::CLOCK_MONOTONIC) + SuiteTools::DEADLINE
    loop do
      queues = Sidekiq::ProcessSet.new.flat_map { |p| p["queues"] }
      return if (QUEUES - queues).empty?
      raise "Sidekiq workers for #{QUEUES - queues} never came up" if
        Process.clock_gettime(Process::CLOCK_MONOTONIC) > stop

      sleep 0.05
    end
  end
end
WorkersReady.wait unless ENV["TXB_RB_NO_WORKERS"]
