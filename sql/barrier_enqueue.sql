--
-- barrier_enqueue(): which xid the token names, and the WAL record that
-- keeps a crash from handing the same xid out again.
--
CREATE EXTENSION pg_walinspect;

-- at top level the token is the transaction's own xid
BEGIN;
SELECT barrier_enqueue() = pg_current_xact_id() AS top_level_token;
-- the same (sub)transaction always gets the same token
SELECT barrier_enqueue() = barrier_enqueue() AS stable;
SAVEPOINT a;
SELECT barrier_enqueue() > pg_current_xact_id() AS sub_token_is_newer;
SELECT pg_xact_status(barrier_enqueue()) AS sub_status;
COMMIT;

-- exactly one token record per subtransaction, carrying its xid
BEGIN;
SELECT pg_current_wal_insert_lsn() AS lsn0 \gset
SELECT barrier_enqueue() AS t1 \gset
SELECT barrier_enqueue() AS t1_again \gset
SELECT pg_current_wal_insert_lsn() AS lsn1 \gset
SAVEPOINT s;
SELECT barrier_enqueue() AS t2 \gset
SELECT pg_current_wal_insert_lsn() AS lsn2 \gset
COMMIT;
SELECT record_type, xid::text::xid8 = :'t1'::xid8 AS carries_token
  FROM pg_get_wal_records_info(:'lsn0', :'lsn1')
 WHERE resource_manager = 'XLOG';
SELECT record_type, xid::text::xid8 = :'t2'::xid8 AS carries_token
  FROM pg_get_wal_records_info(:'lsn1', :'lsn2')
 WHERE resource_manager = 'XLOG';
-- and the record is flushed before the token is returned
SELECT pg_current_wal_flush_lsn() >= :'lsn2'::pg_lsn AS flushed;

-- with durable tokens off, no record is written
SET tx_barrier.durable_tokens = off;
BEGIN;
SELECT pg_current_wal_insert_lsn() AS lsn3 \gset
SELECT barrier_enqueue() AS t3 \gset
COMMIT;
RESET tx_barrier.durable_tokens;
-- a transaction that wrote no WAL commits asynchronously: a durable token
-- flushes everything so far
SELECT barrier_enqueue() IS NOT NULL AS flushing;
SELECT pg_current_wal_flush_lsn() AS lsn4 \gset
SELECT count(*) FILTER (WHERE record_type = 'NOOP') AS token_records,
       count(*) FILTER (WHERE record_type = 'COMMIT') AS commit_records
  FROM pg_get_wal_records_info(:'lsn3', :'lsn4')
 WHERE xid::text::xid8 = :'t3'::xid8;

-- read-only transactions may take a token (like pg_current_xact_id())
BEGIN READ ONLY;
SELECT barrier_enqueue() = pg_current_xact_id() AS read_only_ok;
COMMIT;

-- bookkeeping follows the transactions that enqueued: tokens of a rolled-back
-- savepoint count as aborted, released ones follow their top level
SELECT enqueued AS e0, enqueued_committed AS c0, enqueued_aborted AS a0
  FROM barrier_stats() \gset
BEGIN;
SELECT barrier_enqueue() IS NOT NULL AS ok;
SAVEPOINT a;
SELECT barrier_enqueue() IS NOT NULL AS ok;
SAVEPOINT b;
SELECT barrier_enqueue() IS NOT NULL AS ok;
ROLLBACK TO SAVEPOINT b;
RELEASE SAVEPOINT a;
COMMIT;
BEGIN;
SELECT barrier_enqueue() IS NOT NULL AS ok;
ROLLBACK;
SELECT enqueued - :e0 AS enqueued, enqueued_committed - :c0 AS committed,
       enqueued_aborted - :a0 AS aborted
  FROM barrier_stats();

DROP EXTENSION pg_walinspect;
