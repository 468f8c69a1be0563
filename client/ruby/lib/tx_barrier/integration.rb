# frozen_string_literal: true

# What the Sidekiq and Active Job integrations share: which producer
# connection a job pushed now depends on, and which connection a worker
# waits on.

require_relative "../tx_barrier"

module TxBarrier
  class << self
    # Runs the block with +conn+ (a PG::Connection or an Active Record
    # connection) as the producer connection of this thread: jobs pushed in
    # the block while +conn+ is in a transaction take their barrier on it,
    # instead of on the Active Record connection of config.connection_class.
    # For applications that write with the pg gem directly.
    def with_connection(conn)
      previous = Thread.current[:tx_barrier_producer]
      Thread.current[:tx_barrier_producer] = conn
      yield
    ensure
      Thread.current[:tx_barrier_producer] = previous
    end

    # The connection whose open transaction a job pushed now depends on, or
    # nil when there is none (autocommit, no Active Record, no connection
    # checked out by this thread).  Never checks a connection out.
    def producer_connection
      explicit = Thread.current[:tx_barrier_producer]
      return (in_transaction?(explicit) ? explicit : nil) if explicit

      klass = config.record_class
      return nil unless klass

      conn = begin
        klass.connection_pool.active_connection?
      rescue ::ActiveRecord::ConnectionNotEstablished
        nil
      end
      return nil unless conn.respond_to?(:transaction_open?) && conn.transaction_open?

      conn
    end

    # Yields the connection a worker waits on: a PG::Connection of this
    # thread to config.dsn (made at first use, made again after a
    # connection error), else an Active Record connection of
    # config.connection_class, checked out for the block.
    def with_wait_connection(dsn = config.dsn)
      return with_dsn_connection(dsn) { |c| yield c } if dsn

      klass = config.record_class
      unless klass
        raise ConfigurationError, "no connection to wait on: set TxBarrier.config.dsn " \
                                  "(or TX_BARRIER_DSN), or load Active Record"
      end

      klass.connection_pool.with_connection { |c| yield c }
    end

    private

    def with_dsn_connection(dsn)
      conns = (Thread.current[:tx_barrier_wait_connections] ||= {})
      conn = conns[dsn]
      if conn.nil? || conn.finished? || conn.status != PG::CONNECTION_OK
        begin
          conn&.close
        rescue PG::Error
          nil
        end
        conn = conns[dsn] = PG.connect(dsn)
      end
      begin
        yield conn
      rescue PG::ConnectionBad, PG::UnableToSend, PG::AdminShutdown
        conns.delete(dsn)
        begin
          conn.close
        rescue PG::Error
          nil
        end
        raise
      end
    end
  end
end
