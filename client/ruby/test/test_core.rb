# frozen_string_literal: true

# TxBarrier.enqueue / status / wait / wait! / wait_all on a pg connection
# and on Active Record's, and the typed errors.
require_relative "suite"

class TestCore < Minitest::Test
  def test_enqueue_commit_on_pg_connection
    producer = pg
    waiter = pg
    producer.exec("BEGIN")
    assert TxBarrier.in_transaction?(producer)
    token = TxBarrier.enqueue(producer)
    assert_match(/\A\d+\z/, token)
    assert_equal token, TxBarrier.enqueue(producer), "same transaction, same token"
    assert_equal :in_progress, TxBarrier.status(waiter, token)
    assert_equal :in_progress, TxBarrier.wait(waiter, token, timeout: 0)
    producer.exec("COMMIT")
    refute TxBarrier.in_transaction?(producer)
    assert_equal :committed, TxBarrier.wait(waiter, token, timeout: 10)
    assert_equal :committed, TxBarrier.status(waiter, token)
    assert_equal :committed, TxBarrier.wait!(waiter, token.to_i)
  end

  def test_wait_blocks_until_commit
    producer = pg
    waiter = pg
    producer.exec("BEGIN")
    producer.exec("CREATE TEMP TABLE t_wait (x int)")
    token = TxBarrier.enqueue(producer)
    answer = Thread.new { TxBarrier.wait(waiter, token) }
    wait_until("the waiter to block on #{token}") { waiting_for?(token) }
    assert answer.alive?
    producer.exec("COMMIT")
    assert_equal :committed, answer.value
  end

  def test_rollback_reads_aborted
    producer = pg
    waiter = pg
    producer.exec("BEGIN")
    token = TxBarrier.enqueue(producer)
    answer = Thread.new { TxBarrier.wait(waiter, token) }
    wait_until("the waiter to block") { waiting_for?(token) }
    producer.exec("ROLLBACK")
    assert_equal :aborted, answer.value
    err = assert_raises(TxBarrier::Aborted) { TxBarrier.wait!(waiter, token) }
    assert_equal token, err.token
    assert_equal "40000", err.sqlstate
    assert_kind_of TxBarrier::Error, err
  end

  def test_wait_bang_timeout
    producer = pg
    producer.exec("BEGIN")
    token = TxBarrier.enqueue(producer)
    err = assert_raises(TxBarrier::Timeout) { TxBarrier.wait!(pg, token, timeout: 0.05) }
    assert_equal token, err.token
    assert_equal "57014", err.sqlstate
    producer.exec("ROLLBACK")
  end

  def test_active_record_connection_and_savepoints
    conn = ActiveRecord::Base.connection
    outer = inner = released = nil
    refute TxBarrier.in_transaction?(conn)
    ActiveRecord::Base.transaction do
      # Active Record begins lazily: the token must still be this
      # transaction's, not an autocommit statement's.
      assert TxBarrier.in_transaction?(conn)
      outer = TxBarrier.enqueue(conn)
      assert_equal :in_progress, TxBarrier.status(pg, outer)
      ActiveRecord::Base.transaction(requires_new: true) do
        inner = TxBarrier.enqueue(conn)
        raise ActiveRecord::Rollback
      end
      ActiveRecord::Base.transaction(requires_new: true) do
        released = TxBarrier.enqueue(conn)
      end
      refute_equal outer, inner
      assert_equal :aborted, TxBarrier.wait(pg, inner, timeout: 10)
      assert_equal :in_progress, TxBarrier.status(pg, released)
    end
    assert_equal({ outer => :committed, inner => :aborted, released => :committed },
                 TxBarrier.wait_all(conn, [outer, inner, released], timeout: 10))
    ActiveRecord::Base.transaction do
      outer = TxBarrier.enqueue(conn)
      raise ActiveRecord::Rollback
    end
    assert_equal :aborted, TxBarrier.wait(conn, outer)
  end

  def test_active_record_query_cache_is_not_used
    # Rails enables the query cache in requests and jobs: a savepoint's
    # token and a later answer must not come from it.
    conn = ActiveRecord::Base.connection
    ActiveRecord::Base.cache do
      ActiveRecord::Base.transaction do
        outer = TxBarrier.enqueue(conn)
        inner = nil
        ActiveRecord::Base.transaction(requires_new: true) do
          inner = TxBarrier.enqueue(conn)
          raise ActiveRecord::Rollback
        end
        refute_equal outer, inner
        assert_equal :aborted, TxBarrier.status(conn, inner)
        assert_equal :in_progress, TxBarrier.status(pg, outer)
        other = pg
        other.exec("BEGIN")
        token = TxBarrier.enqueue(other)
        assert_equal :in_progress, TxBarrier.status(conn, token)
        other.exec("COMMIT")
        assert_equal :committed, TxBarrier.status(conn, token)
      end
    end
  end

  def test_wait_all_shared_timeout
    a = pg
    b = pg
    a.exec("BEGIN")
    b.exec("BEGIN")
    ta = TxBarrier.enqueue(a)
    tb = TxBarrier.enqueue(b)
    a.exec("COMMIT")
    got = TxBarrier.wait_all(pg, [ta, tb], timeout: 0.1)
    assert_equal({ ta => :committed, tb => :in_progress }, got)
    b.exec("ROLLBACK")
    assert_equal({ ta => :committed, tb => :aborted }, TxBarrier.wait_all(pg, [ta, tb]))
    assert_equal({}, TxBarrier.wait_all(pg, []))
  end

  def test_extension_missing
    db = ENV.fetch("TXB_RB_NOEXT_DB", "txb_ruby_noext")
    err = assert_raises(TxBarrier::ExtensionMissing) { TxBarrier.enqueue(pg(db)) }
    assert_equal db, err.database
    assert_equal "42883", err.sqlstate
    assert_kind_of TxBarrier::ConfigurationError, err
    assert_includes err.message, db.inspect
    assert_includes err.message, "CREATE EXTENSION tx_barrier"
    assert_includes err.message, "tx_barrier_portable.sql"
    assert_includes err.message, "search_path"
    assert_includes err.server_message, "barrier_enqueue"

    klass = Class.new(ActiveRecord::Base) do
      self.abstract_class = true
      def self.name = "NoExtRecord"
    end
    klass.establish_connection(TestEnv.ar_config(db))
    err = assert_raises(TxBarrier::ExtensionMissing) do
      klass.connection_pool.with_connection { |c| TxBarrier.status(c, "1000") }
    end
    assert_equal db, err.database
    assert_kind_of ActiveRecord::StatementInvalid, err.cause
    klass.connection_pool.disconnect!
  end

  def test_portable_schema_off_search_path
    # The portable edition is installed, its schema not on the search_path:
    # the error names that fix, not only CREATE EXTENSION (which a managed
    # server does not allow).
    db = ENV.fetch("TXB_RB_OFFPATH_DB", "txb_ruby_offpath")
    conn = pg(db)
    [-> { TxBarrier.enqueue(conn) }, -> { TxBarrier.wait(conn, 1, timeout: 0) },
     -> { TxBarrier.wait_all(conn, [1], timeout: 0) }].each do |call|
      err = assert_raises(TxBarrier::ExtensionMissing) { call.call }
      assert_equal [db, "42883"], [err.database, err.sqlstate]
      assert_includes err.message, "portable/tx_barrier_portable.sql"
      assert_includes err.message, "search_path"
      assert_includes err.message, db.inspect
      assert_includes err.server_message, "barrier_"
    end
    # With the schema on the path, the same calls work: the fix is the path.
    conn.exec("SET search_path = public, txb_hidden")
    assert_equal :committed, TxBarrier.status(conn, TxBarrier.enqueue(conn))
  end

  # The portable edition (TXB_INSTALL_SQL, the portable layer's run of this
  # layer) answers a token ahead of a primary's next xid with aborted, as
  # its README says: no transaction with that id has started.
  PORTABLE = !ENV["TXB_INSTALL_SQL"].to_s.empty?

  def test_token_errors
    conn = pg
    future = (conn.exec("SELECT pg_current_xact_id()::text").getvalue(0, 0).to_i + 1_000_000).to_s
    if PORTABLE
      assert_equal :aborted, TxBarrier.status(conn, future)
      assert_equal :aborted, TxBarrier.wait(ActiveRecord::Base.connection, future, timeout: 1)
      return
    end
    err = assert_raises(TxBarrier::TokenError) { TxBarrier.status(conn, future) }
    assert_equal "22023", err.sqlstate
    assert_match(/future/, err.message)
    err = assert_raises(TxBarrier::TokenError) do
      TxBarrier.wait(ActiveRecord::Base.connection, future, timeout: 1)
    end
    assert_equal "22023", err.sqlstate
  end

  def test_cancelled_wait_is_a_transient_database_error
    producer = pg
    producer.exec("BEGIN")
    token = TxBarrier.enqueue(producer)
    waiter = pg
    waiter.exec("SET statement_timeout = '50ms'")
    err = assert_raises(TxBarrier::DatabaseError) { TxBarrier.wait(waiter, token) }
    assert_equal "57014", err.sqlstate
    assert_kind_of PG::QueryCanceled, err.cause
    assert TxBarrier.transient?(err)
    producer.exec("ROLLBACK")
  end

  def test_normalize_token
    assert_equal "42", TxBarrier.normalize_token(42)
    assert_equal "18446744073709551615", TxBarrier.normalize_token("18446744073709551615")
    assert_nil TxBarrier.normalize_token(nil)
    assert_raises(ArgumentError) { TxBarrier.normalize_token("18446744073709551616") }
    assert_raises(ArgumentError) { TxBarrier.normalize_token(-1) }
    assert_raises(ArgumentError) { TxBarrier.normalize_token("1; DROP TABLE x") }
    assert_raises(TypeError) { TxBarrier.normalize_token(1.5) }
    assert_raises(ArgumentError) { TxBarrier.wait(pg, "1", timeout: -1) }
  end

  def test_version_is_the_extensions
    # EXTVERSION of the top Makefile, as the layer reads it.
    assert_equal "#{ENV.fetch("TXB_RB_EXTVERSION")}.0", TxBarrier::VERSION
  end
end
