# frozen_string_literal: true

# Transaction barriers for PostgreSQL, from Ruby.
#
# A producer takes a *token* inside the transaction that changes the data
# (TxBarrier.enqueue), sends it along with an asynchronous job before COMMIT,
# and commits.  The worker, before it touches the data, asks PostgreSQL to
# block until that transaction has ended (TxBarrier.wait) and learns whether
# it committed or aborted.  The work is done by the tx_barrier extension
# (CREATE EXTENSION tx_barrier) or its portable edition; this module only
# calls their SQL functions, on a PG::Connection (the pg gem) or on an
# Active Record PostgreSQL connection (ActiveRecord::Base.connection).
#
# The Sidekiq integration is in tx_barrier/sidekiq, the Active Job one in
# tx_barrier/active_job.

require "pg"
require "logger"
require_relative "tx_barrier/version"

module TxBarrier
  # The answers of barrier_status / barrier_wait, as symbols.
  COMMITTED = :committed
  ABORTED = :aborted
  IN_PROGRESS = :in_progress
  STATES = { "committed" => COMMITTED, "aborted" => ABORTED,
             "in progress" => IN_PROGRESS }.freeze

  # SQLSTATEs the extension (or the server) raises that this module maps.
  SQLSTATE_INVALID = "22023"            # token in the future, bad timeout
  SQLSTATE_TOO_OLD = "55000"            # older than the commit log knows
  SQLSTATE_UNDEFINED_FUNCTION = "42883" # no barrier function on the path
  SQLSTATE_UNDEFINED_OBJECT = "42704"   # no barrier_state type on the path

  # The SQL of each call.  Tokens and timeouts are checked and normalized
  # first (decimal digits, a float), so that the same text works as a
  # parameterized statement on a PG::Connection and as a literal one through
  # Active Record (no prepared statements: PgBouncer's transaction pooling).
  SQL_ENQUEUE = "SELECT barrier_enqueue()::text"
  SQL_STATUS = "SELECT barrier_status($1::xid8)::text"
  SQL_WAIT = "SELECT barrier_wait($1::xid8, $2::float8 * interval '1 second')::text"
  SQL_WAIT_ALL = "SELECT token::text, state::text FROM " \
                 "barrier_wait_all($1::text[]::xid8[], $2::float8 * interval '1 second')"

  # Base class of every error this gem raises.  +sqlstate+ is the server's
  # SQLSTATE when the error came from the server, else the standard code of
  # the condition (see each class).
  class Error < StandardError
    attr_reader :sqlstate

    def initialize(message = nil, sqlstate: nil)
      super(message)
      @sqlstate = sqlstate
    end
  end

  # The token's transaction (or the savepoint it was taken in) rolled back:
  # the job must not run.  Raised by TxBarrier.wait!; the integrations drop
  # such a job instead.  +sqlstate+ is "40000" (transaction_rollback).
  class Aborted < Error
    attr_reader :token

    def initialize(message = nil, token: nil)
      super(message || "the transaction of barrier token #{token} rolled back",
            sqlstate: "40000")
      @token = token
    end
  end

  # The token's transaction was still open when the time allowed ran out
  # (TxBarrier.wait!, or an integration's max_delays).  TxBarrier.wait itself
  # does not raise: it returns :in_progress.  +sqlstate+ is "57014"
  # (query_canceled, what a wait cut short by statement_timeout gives).
  class Timeout < Error
    attr_reader :token

    def initialize(message = nil, token: nil)
      super(message || "the transaction of barrier token #{token} is still in progress",
            sqlstate: "57014")
      @token = token
    end
  end

  # PostgreSQL cannot say what became of the token's transaction: a token
  # from another cluster, from the future (22023) or older than the commit
  # log (55000).  Retrying cannot help.
  class TokenError < Error; end

  # The integration has nothing to take or check a token on.
  class ConfigurationError < Error; end

  # Any other error the server raised in a barrier function (+sqlstate+ is
  # its SQLSTATE, +cause+ the pg error): 25006 for barrier_enqueue on a hot
  # standby, 57014 for a cancelled wait, 40001 for a recovery conflict on a
  # standby, 42501 for a missing privilege, ...
  class DatabaseError < Error; end

  # The barrier functions are not found in the database: neither the
  # extension nor the portable edition is installed in a schema on the
  # connection's search_path.  +database+ names the database, +sqlstate+ is
  # 42883 (or 42704 for a missing barrier_state type), +server_message+ the
  # server's message.
  class ExtensionMissing < ConfigurationError
    attr_reader :database, :server_message

    def initialize(database, sqlstate: SQLSTATE_UNDEFINED_FUNCTION, server_message: nil)
      @database = database
      @server_message = server_message
      super("the tx_barrier functions are not found in database #{database.inspect} " \
            "(#{sqlstate}#{server_message ? ": #{server_message}" : ""}): with the C " \
            "extension, run CREATE EXTENSION tx_barrier in it; with the portable edition " \
            "(managed servers), install portable/tx_barrier_portable.sql (psql -v " \
            "schema=tx_barrier -f ...) and put its schema on the search_path of the " \
            "application's and the workers' roles (ALTER ROLE ... SET search_path = " \
            "\"$user\", public, tx_barrier), with USAGE on it",
            sqlstate: sqlstate)
    end
  end

  # Settings of the Sidekiq and Active Job integrations (TxBarrier.configure).
  class Configuration
    # Take a barrier automatically when a job is pushed inside an open
    # Active Record transaction (default true).  A job opts out with the
    # job option tx_barrier: false.
    attr_accessor :auto
    # Seconds one barrier_wait may hold a worker thread (default 5.0; nil:
    # no limit, only for dedicated workers).  Still open after that, the
    # job is rescheduled.
    attr_accessor :wait_timeout
    # Seconds after which a rescheduled job is due again (default 1.0; the
    # wait itself was already a delay).
    attr_accessor :delay
    # Seconds before a job whose wait failed on a database error (lost
    # connection, cancelled statement, recovery conflict) is due again
    # (default 1.0).
    attr_accessor :error_delay
    # How many reschedules before the job fails with TxBarrier::Timeout
    # (default nil: until the transaction ends).
    attr_accessor :max_delays
    # The worker waits on a PG::Connection to this DSN (one per thread),
    # for instance a PgBouncer pool or a hot standby, instead of its own
    # Active Record connection (default: ENV["TX_BARRIER_DSN"], else nil).
    attr_accessor :dsn
    # The Active Record class whose connection the producer's transaction is
    # on (default "ActiveRecord::Base"; with several databases, the abstract
    # class of the one whose transaction the job depends on).  A class or
    # its name.
    attr_accessor :connection_class
    # Where aborts, reschedules and warnings go (default: Sidekiq's logger in
    # a Sidekiq process, Rails.logger under Rails, else $stderr).
    attr_writer :logger
    # Called with (job payload or Active Job instance, token) when a job is
    # dropped because its transaction rolled back (default nil).
    attr_accessor :on_abort

    def initialize
      @auto = true
      @wait_timeout = 5.0
      @delay = 1.0
      @error_delay = 1.0
      @max_delays = nil
      @dsn = ENV["TX_BARRIER_DSN"] unless ENV["TX_BARRIER_DSN"].to_s.empty?
      @connection_class = "ActiveRecord::Base"
      @logger = nil
      @on_abort = nil
    end

    def logger
      return @logger if @logger
      return ::Sidekiq.logger if defined?(::Sidekiq) && ::Sidekiq.respond_to?(:logger)
      return ::Rails.logger if defined?(::Rails) && ::Rails.respond_to?(:logger) && ::Rails.logger

      @default_logger ||= Logger.new($stderr, progname: "tx_barrier")
    end

    # The Active Record class of the producer's database, or nil.
    def record_class
      return nil unless defined?(::ActiveRecord::Base)

      klass = @connection_class
      klass.is_a?(String) ? Object.const_get(klass) : klass
    end
  end

  class << self
    def config
      @config ||= Configuration.new
    end

    def configure
      yield config
      config
    end

    # Returns the token as the decimal string carried in job payloads
    # (xid8 values are unsigned 64-bit integers: strings, so that no JSON
    # implementation rounds them).  nil stays nil.
    def normalize_token(token)
      return nil if token.nil?

      value = case token
              when Integer then token
              when String
                raise ArgumentError, "not a barrier token: #{token.inspect}" unless
                  token.strip.match?(/\A\d{1,20}\z/)

                token.strip.to_i
              else
                raise TypeError, "a barrier token is an integer or a decimal string, " \
                                 "not #{token.class}"
              end
      raise ArgumentError, "barrier token out of range: #{token.inspect}" if
        value.negative? || value >= 1 << 64

      value.to_s
    end

    # Takes a barrier token in the connection's current transaction (or the
    # current savepoint's subtransaction: if that savepoint rolls back, the
    # token reads aborted even when the enclosing transaction commits).
    # Push the job with it, then COMMIT.  In autocommit the token's
    # transaction is the statement itself: see in_transaction?.
    def enqueue(conn)
      normalize_token(query(conn, SQL_ENQUEUE, []).first.first)
    end

    # The state of the token's transaction, without waiting:
    # :committed, :aborted or :in_progress.
    def status(conn, token)
      state(query(conn, SQL_STATUS, [normalize_token(token)]).first.first)
    end

    # Blocks until the token's transaction has ended and returns :committed
    # or :aborted; returns :in_progress if it is still running after
    # +timeout+ seconds (nil: no limit; 0: a status check).  Call it outside
    # a transaction (autocommit), so that the next statement sees a committed
    # transaction's rows.
    def wait(conn, token, timeout: nil)
      state(query(conn, SQL_WAIT, [normalize_token(token), seconds(timeout)]).first.first)
    end

    # Like wait, but returns only :committed: raises TxBarrier::Aborted or
    # TxBarrier::Timeout otherwise.
    def wait!(conn, token, timeout: nil)
      tok = normalize_token(token)
      case wait(conn, tok, timeout: timeout)
      when COMMITTED then COMMITTED
      when ABORTED then raise Aborted.new(token: tok)
      else
        raise Timeout.new("the transaction of barrier token #{tok} is still in progress " \
                          "after #{timeout}s", token: tok)
      end
    end

    # Waits for several tokens with one shared +timeout+ (seconds) and
    # returns a Hash from each token (a decimal string) to its state.
    def wait_all(conn, tokens, timeout: nil)
      toks = tokens.map { |t| normalize_token(t) }
      array = "{#{toks.join(",")}}"
      query(conn, SQL_WAIT_ALL, [array, seconds(timeout)]).to_h { |tok, st| [tok, state(st)] }
    end

    # Tells whether a token taken now on +conn+ would belong to a
    # transaction that the caller will still commit or roll back: an open
    # BEGIN on a PG::Connection, an open transaction block on an Active
    # Record connection.
    def in_transaction?(conn)
      if conn.is_a?(PG::Connection)
        conn.transaction_status != PG::PQTRANS_IDLE
      elsif conn.respond_to?(:transaction_open?)
        conn.transaction_open?
      else
        raise ArgumentError, "a PG::Connection or an Active Record PostgreSQL " \
                             "connection is needed, not #{conn.class}"
      end
    end

    # The SQLSTATE of a pg error (or of the pg error an Active Record error
    # wraps), or nil.
    def sqlstate_of(error)
      pg_error(error)&.result&.error_field(PG::PG_DIAG_SQLSTATE)
    end

    # Connection trouble, a cancelled statement, a recovery conflict, too
    # many connections: worth trying again later.
    def transient?(error)
      [error, error.cause].compact.each do |e|
        return true if e.is_a?(PG::ConnectionBad) || e.is_a?(PG::UnableToSend)
        return true if defined?(::ActiveRecord::ConnectionNotEstablished) &&
                       e.is_a?(::ActiveRecord::ConnectionNotEstablished)
        return true if defined?(::ActiveRecord::ConnectionTimeoutError) &&
                       e.is_a?(::ActiveRecord::ConnectionTimeoutError)
      end
      code = sqlstate_of(error)
      return false unless code

      code.start_with?("08", "57", "53") || code == "40001"
    end

    private

    def seconds(timeout)
      return nil if timeout.nil?
      raise ArgumentError, "timeout must be a number of seconds" unless timeout.is_a?(Numeric)
      raise ArgumentError, "timeout must not be negative" if timeout.negative?

      timeout.to_f
    end

    def state(text)
      STATES.fetch(text) { raise Error, "unexpected barrier state #{text.inspect}" }
    end

    def pg_error(error)
      [error, error.respond_to?(:cause) ? error.cause : nil].find do |e|
        e.is_a?(PG::Error) && e.result
      end
    end

    # Runs one of the SQL_* statements and returns its rows (arrays of
    # strings).  On a PG::Connection as a parameterized statement; on an
    # Active Record connection through its own exec_query (so that its
    # lazily begun transaction is begun first and its state stays right),
    # with the already checked parameters inlined as literals.
    def query(conn, sql, params)
      if conn.is_a?(PG::Connection)
        begin
          conn.exec_params(sql, params).values
        rescue PG::Error => e
          mapped = map_error(e) { conn.db }
          raise mapped || e
        end
      elsif conn.respond_to?(:exec_query) && conn.respond_to?(:transaction_open?)
        begin
          # exec_query, not select_rows: never answered from the query cache
          # (a savepoint's token is not its transaction's, a wait's answer
          # changes).
          conn.exec_query(inline(sql, params), "TxBarrier").rows
        rescue StandardError => e
          raise unless pg_error(e)

          mapped = map_error(e) { conn.pool.db_config.database }
          raise mapped || e
        end
      else
        raise ArgumentError, "a PG::Connection or an Active Record PostgreSQL " \
                             "connection is needed, not #{conn.class}"
      end
    end

    # $1, $2 replaced by the literals of the normalized values: tokens and
    # arrays of tokens are digits, commas and braces, timeouts floats.
    def inline(sql, params)
      sql.gsub(/\$(\d)/) do
        value = params[Regexp.last_match(1).to_i - 1]
        case value
        when nil then "NULL"
        when Float then value.to_s
        when /\A[{}\d,]*\z/ then "'#{value}'"
        else raise ArgumentError, "unexpected parameter #{value.inspect}"
        end
      end
    end

    # The typed error for a server error of a barrier function (nil for a
    # client-side one: a lost connection stays a PG::ConnectionBad).
    # The block names the database (only called for a missing extension).
    def map_error(error)
      err = pg_error(error)
      return nil unless err

      code = err.result.error_field(PG::PG_DIAG_SQLSTATE)
      primary = err.result.error_field(PG::PG_DIAG_MESSAGE_PRIMARY) || err.message.strip
      case code
      when SQLSTATE_INVALID, SQLSTATE_TOO_OLD
        TokenError.new(primary, sqlstate: code)
      when SQLSTATE_UNDEFINED_FUNCTION, SQLSTATE_UNDEFINED_OBJECT
        return DatabaseError.new(primary, sqlstate: code) unless primary.include?("barrier_")

        database = begin
          yield
        rescue StandardError
          nil
        end
        ExtensionMissing.new(database, sqlstate: code, server_message: primary)
      else
        DatabaseError.new(primary, sqlstate: code)
      end
    end
  end
end
