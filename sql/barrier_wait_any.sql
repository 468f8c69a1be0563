--
-- barrier_wait_any() in one session, on a server that does not preload
-- tx_barrier: the SQL surface, bad input, and every answer that needs no
-- sleep.  Waking (commit, abort, savepoints, 2PC, timeouts, interrupts,
-- standbys) is covered by specs/wait_any.spec and t/011_wait_any.pl, which
-- preload it.
--

BEGIN;
SELECT barrier_enqueue() AS t_commit \gset
COMMIT;
BEGIN;
SELECT barrier_enqueue() AS t_abort \gset
ROLLBACK;

-- the signature matches barrier_wait_all's
SELECT pg_get_function_arguments('barrier_wait_any(xid8[],interval)'::regprocedure);
SELECT pg_get_function_result('barrier_wait_any(xid8[],interval)'::regprocedure);

-- ended tokens are answered at once, in array order, duplicates alike,
-- NULL elements never
SELECT token = :'t_commit'::xid8 AS is_commit_token, state
  FROM barrier_wait_any(ARRAY[:'t_commit', NULL, :'t_abort', :'t_commit']::xid8[]);
SELECT state FROM barrier_wait_any(ARRAY[:'t_abort']::xid8[], '0');
SELECT state FROM barrier_wait_any(ARRAY[:'t_commit']::xid8[], '1 min');

-- nothing to wait for: no rows at once
SELECT count(*) FROM barrier_wait_any(NULL);
SELECT count(*) FROM barrier_wait_any('{}');
SELECT count(*) FROM barrier_wait_any(ARRAY[NULL, NULL]::xid8[]);
SELECT count(*) FROM barrier_wait_any(NULL, '1s');

-- bootstrap and frozen xids are committed by definition
SELECT token, state FROM barrier_wait_any('{1,2}');

-- never waits on itself: the caller's own (sub)transaction is answered
-- "in progress" at once, as barrier_wait() answers it
BEGIN;
SELECT barrier_enqueue() AS t_own \gset
SAVEPOINT a;
SELECT barrier_enqueue() AS t_own_sub \gset
SELECT token = :'t_own'::xid8 AS is_own, state
  FROM barrier_wait_any(ARRAY[:'t_own', :'t_own_sub']::xid8[]);
ROLLBACK TO SAVEPOINT a;
-- the rolled-back savepoint's token has ended, the top level has not
SELECT token = :'t_own_sub'::xid8 AS is_own_sub, state
  FROM barrier_wait_any(ARRAY[:'t_own_sub']::xid8[]);
COMMIT;
SELECT token = :'t_own'::xid8 AS is_own, state
  FROM barrier_wait_any(ARRAY[:'t_own', :'t_own_sub']::xid8[]);

-- a prepared transaction stays running until COMMIT PREPARED: a zero
-- timeout only looks (no rows, no error); waiting for it would need
-- shared_preload_libraries, which this server lacks: 55000, with a hint
BEGIN;
SELECT barrier_enqueue() AS t_prepared \gset
PREPARE TRANSACTION 'txb_wait_any_regress';
SELECT count(*) FROM barrier_wait_any(ARRAY[:'t_prepared']::xid8[], '0');
SELECT * FROM barrier_wait_any(ARRAY[:'t_prepared']::xid8[], '10 ms');
\set VERBOSITY sqlstate
SELECT * FROM barrier_wait_any(ARRAY[:'t_prepared', NULL]::xid8[]);
\set VERBOSITY default
-- ... unless another token has already ended
SELECT token = :'t_commit'::xid8 AS is_commit_token, state
  FROM barrier_wait_any(ARRAY[:'t_prepared', :'t_commit']::xid8[]);
COMMIT PREPARED 'txb_wait_any_regress';
SELECT state FROM barrier_wait_any(ARRAY[:'t_prepared']::xid8[]);

-- bad tokens and bad timeouts: the policies of barrier_wait_all
SELECT * FROM barrier_wait_any('{0}');
SELECT * FROM barrier_wait_any(ARRAY[:'t_commit', '1000000000000']::xid8[]);
SELECT * FROM barrier_wait_any('{4294967298}');	-- epoch 1, xid 2
SELECT * FROM barrier_wait_any('{3}');			-- older than the commit log
SELECT * FROM barrier_wait_any('{{2},{2}}'::xid8[]);
SELECT * FROM barrier_wait_any(NULL, '-1 s');
SELECT * FROM barrier_wait_any('{2}', '-1 s');
SELECT * FROM barrier_wait_any('{2}', '178000000 years');

-- counted like barrier_wait_all's waits: one per answered row
SELECT waits_committed AS c0, waits_aborted AS a0 FROM barrier_stats() \gset
SELECT count(*) FROM barrier_wait_any(ARRAY[:'t_commit', :'t_abort', :'t_commit']::xid8[]);
SELECT waits_committed - :c0 AS committed, waits_aborted - :a0 AS aborted
  FROM barrier_stats();

-- the safety net's setting (tx_barrier.max_wait_any_tokens exists only
-- when preloaded)
SHOW tx_barrier.wait_any_recheck_interval;
