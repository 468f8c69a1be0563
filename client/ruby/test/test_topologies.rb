# frozen_string_literal: true

# Deployments other than one database: producers and workers through
# PgBouncer in transaction pooling, a hot standby as the worker's
# database, and the portable edition (test/worker.rb roles bouncer,
# standby and portable).
require_relative "suite"

class TestTopologies < Minitest::Test
  # --- PgBouncer (pool_mode = transaction, 4 server connections): the
  # producer's Active Record connection, and the worker's Active Record
  # connection and waits, all through it.
  def test_pgbouncer_commit_and_rollback
    tags = Array.new(10) { new_tag }
    tags.each_with_index do |tag, i|
      BouncerRecord.transaction do
        id = new_id
        BouncerItem.create!(id: id, tag: tag)
        TxBarrier.with_connection(BouncerRecord.connection) do
          RecordJob.set(queue: "bouncer").perform_async(tag, id)
        end
        raise ActiveRecord::Rollback if i.odd?
      end
    end
    tags.each_with_index do |tag, i|
      row = wait_runs(tag).first
      want = i.odd? ? ["aborted", nil] : ["run", true]
      assert_equal want, [row.kind, row.visible], tag
      assert_equal "bouncer", row.role unless i.odd?
    end
  end

  # --- A hot standby: the producer writes on the primary; the worker
  # waits on the standby (barrier_wait there returns once the commit is
  # replayed) and reads the row there.
  def test_hot_standby_as_the_workers_database
    primary = PG.connect(ENV.fetch("TXB_RB_PRIMARY"))
    committed = new_tag
    rolled_back = new_tag
    [[committed, "COMMIT"], [rolled_back, "ROLLBACK"]].each do |tag, finish|
      primary.exec("BEGIN")
      id = new_id
      primary.exec_params("INSERT INTO ruby_items VALUES ($1, $2)", [id, tag])
      TxBarrier.with_connection(primary) do
        RecordJob.set(queue: "standby").perform_async(tag, id)
      end
      primary.exec(finish)
    end
    run = wait_runs(committed).first
    assert_equal ["run", true, "standby"], [run.kind, run.visible, run.role]
    assert_equal %w[aborted], wait_runs(rolled_back).map(&:kind)
    standby = PG.connect(ENV.fetch("TXB_RB_STANDBY"))
    err = assert_raises(TxBarrier::DatabaseError) { TxBarrier.enqueue(standby) }
    assert_equal "25006", err.sqlstate
    standby.close
  ensure
    primary&.close
  end

  # --- The portable edition (portable/tx_barrier_portable.sql in schema
  # tx_barrier, on the database's search_path).
  def test_portable_edition_core
    conn = pg(TestEnv.portable_db)
    producer = pg(TestEnv.portable_db)
    producer.exec("BEGIN")
    token = TxBarrier.enqueue(producer)
    assert_equal :in_progress, TxBarrier.wait(conn, token, timeout: 0.05)
    producer.exec("SAVEPOINT s")
    inner = TxBarrier.enqueue(producer)
    producer.exec("ROLLBACK TO SAVEPOINT s")
    producer.exec("COMMIT")
    assert_equal({ token => :committed, inner => :aborted },
                 TxBarrier.wait_all(conn, [token, inner], timeout: 30))
  end

  def test_portable_edition_sidekiq
    ok = new_tag
    aborted = new_tag
    savepoint = new_tag
    PortableRecord.transaction do
      TxBarrier.with_connection(PortableRecord.connection) do
        id = new_id
        PortableItem.create!(id: id, tag: ok)
        RecordJob.set(queue: "portable").perform_async(ok, id)
        PortableRecord.transaction(requires_new: true) do
          id = new_id
          PortableItem.create!(id: id, tag: savepoint)
          RecordJob.set(queue: "portable").perform_async(savepoint, id)
          raise ActiveRecord::Rollback
        end
      end
    end
    PortableRecord.transaction do
      id = new_id
      PortableItem.create!(id: id, tag: aborted)
      TxBarrier.with_connection(PortableRecord.connection) do
        RecordJob.set(queue: "portable").perform_async(aborted, id)
      end
      raise ActiveRecord::Rollback
    end
    run = wait_runs(ok, model: PortableRun).first
    assert_equal ["run", true, "portable"], [run.kind, run.visible, run.role]
    assert_equal %w[aborted], wait_runs(aborted, model: PortableRun).map(&:kind)
    assert_equal %w[aborted], wait_runs(savepoint, model: PortableRun).map(&:kind)
  end
end
