--
-- barrier_wait() and barrier_wait_all() in one session: finished tokens,
-- the caller's own transaction, timeouts.
--

BEGIN;
SELECT barrier_enqueue() AS t_commit \gset
COMMIT;
BEGIN;
SELECT barrier_enqueue() AS t_abort \gset
ROLLBACK;

SELECT barrier_wait(:'t_commit') AS committed_no_timeout,
       barrier_wait(:'t_commit', '1s') AS committed_timeout,
       barrier_wait(:'t_commit', '0') AS committed_zero;
SELECT barrier_wait(:'t_abort') AS aborted_no_timeout,
       barrier_wait(:'t_abort', '0') AS aborted_zero;

-- never waits on itself, even without a timeout
BEGIN;
SELECT barrier_enqueue() AS t_own \gset
SELECT barrier_wait(:'t_own') AS own_top;
SAVEPOINT a;
SELECT barrier_enqueue() AS t_own_sub \gset
SELECT barrier_wait(:'t_own_sub') AS own_sub;
RELEASE SAVEPOINT a;
SELECT barrier_wait(:'t_own_sub') AS own_released_sub;
SAVEPOINT b;
SELECT barrier_enqueue() AS t_own_rolled_back \gset
ROLLBACK TO SAVEPOINT b;
SELECT barrier_wait(:'t_own_rolled_back') AS own_rolled_back_sub;
SELECT token = :'t_own'::xid8 AS is_own, state
  FROM barrier_wait_all(ARRAY[:'t_own', :'t_own_sub']::xid8[]);
COMMIT;

-- wait_all: one row per element, in order, duplicates and NULLs kept
SELECT token = :'t_commit'::xid8 AS is_commit_token, state
  FROM barrier_wait_all(ARRAY[:'t_commit', :'t_abort', NULL, :'t_commit']::xid8[]);
SELECT state FROM barrier_wait_all(ARRAY[:'t_commit', :'t_abort']::xid8[], '0');

-- an error for one bad token fails the call
SELECT * FROM barrier_wait_all(ARRAY[:'t_commit', '1000000000000']::xid8[]);

-- counters of this session (no shared_preload_libraries here)
SELECT scope, waits > 0 AS counted_waits, waits_committed > 0 AS counted_commits,
       waits_aborted > 0 AS counted_aborts
  FROM barrier_stats();
