-- pgTAP: the SQL contract other tools depend on, and the SQLSTATE of every
-- error a client may want to tell apart.
BEGIN;
SELECT plan(50);

-- names and signatures
SELECT has_type('pg_catalog', 'barrier_state', 'type barrier_state exists');
SELECT enum_has_labels('pg_catalog', 'barrier_state',
	ARRAY['in progress', 'committed', 'aborted'], 'labels are pg_xact_status''s, in order');
SELECT has_function('pg_catalog', 'barrier_enqueue', ARRAY[]::name[]);
SELECT has_function('pg_catalog', 'barrier_status', ARRAY['xid8']);
SELECT has_function('pg_catalog', 'barrier_wait', ARRAY['xid8', 'interval']);
SELECT has_function('pg_catalog', 'barrier_wait_all', ARRAY['xid8[]', 'interval']);
SELECT has_function('pg_catalog', 'barrier_wait_any', ARRAY['xid8[]', 'interval']);
SELECT has_function('pg_catalog', 'barrier_stats', ARRAY[]::name[]);
SELECT has_function('pg_catalog', 'barrier_waiters', ARRAY[]::name[]);
SELECT function_returns('pg_catalog', 'barrier_enqueue', ARRAY[]::name[], 'xid8');
SELECT function_returns('pg_catalog', 'barrier_status', ARRAY['xid8'], 'barrier_state');
SELECT function_returns('pg_catalog', 'barrier_wait', ARRAY['xid8', 'interval'], 'barrier_state');
SELECT function_returns('pg_catalog', 'barrier_wait_all', ARRAY['xid8[]', 'interval'], 'setof record');
SELECT function_returns('pg_catalog', 'barrier_wait_any', ARRAY['xid8[]', 'interval'], 'setof record');

-- all volatile and parallel unsafe
SELECT volatility_is('pg_catalog', f, a, 'volatile', f || ' is volatile')
  FROM (VALUES ('barrier_enqueue', ARRAY[]::name[]),
			   ('barrier_status', ARRAY['xid8']::name[]),
			   ('barrier_wait', ARRAY['xid8', 'interval']::name[]),
			   ('barrier_wait_all', ARRAY['xid8[]', 'interval']::name[]),
			   ('barrier_wait_any', ARRAY['xid8[]', 'interval']::name[])) v(f, a);
SELECT is(count(*)::int, 0, 'no barrier function is parallel safe or restricted')
  FROM pg_proc WHERE proname LIKE 'barrier\_%' AND proparallel <> 'u';

-- everyone may call the functions but barrier_waiters()
SELECT ok(has_function_privilege('public', 'barrier_wait(xid8,interval)', 'EXECUTE')
		  AND has_function_privilege('public', 'barrier_enqueue()', 'EXECUTE'),
		  'barrier_enqueue and barrier_wait are executable by PUBLIC');
SELECT ok(NOT has_function_privilege('public', 'barrier_waiters()', 'EXECUTE')
		  AND has_function_privilege('pg_read_all_stats', 'barrier_waiters()', 'EXECUTE'),
		  'barrier_waiters is for pg_read_all_stats only');

-- the timeout defaults to no limit
SELECT is(pg_get_function_arguments('barrier_wait(xid8,interval)'::regprocedure),
		  'token xid8, timeout interval DEFAULT NULL::interval', 'barrier_wait timeout defaults to NULL');

-- outcomes
SELECT is(barrier_status(barrier_enqueue()), 'in progress', 'own transaction is in progress');
SELECT is(barrier_wait(barrier_enqueue()), 'in progress', 'waiting on oneself returns at once');
SELECT is(barrier_wait(barrier_enqueue(), '0'), 'in progress', 'zero timeout on oneself');
SELECT is(barrier_status('2'), 'committed', 'frozen xid is committed');
SELECT is(barrier_status(NULL), NULL, 'NULL token, NULL state');
SELECT is(barrier_wait(NULL, NULL), NULL, 'NULL token and timeout, NULL state');
SELECT is((SELECT count(*)::int FROM barrier_wait_all('{}')), 0, 'empty array, no rows');
SELECT is((SELECT count(*)::int FROM barrier_wait_any('{}')), 0, 'wait_any: empty array, no rows');
SELECT is((SELECT state FROM barrier_wait_any(ARRAY[barrier_enqueue()])), 'in progress',
	'wait_any on oneself returns at once');

SAVEPOINT sp;
SELECT barrier_enqueue() AS sub_token \gset
ROLLBACK TO SAVEPOINT sp;
SELECT is(barrier_status(:'sub_token'), 'aborted', 'rolled-back savepoint reads aborted at once');
SELECT is(barrier_wait(:'sub_token'), 'aborted', 'and waiting on it returns aborted');

-- errors and their SQLSTATEs
SELECT throws_ok($$SELECT barrier_status('1000000000000')$$, '22023',
	'barrier token 1000000000000 is in the future', 'future token: 22023');
SELECT throws_ok($$SELECT barrier_wait('1000000000000', '1s')$$, '22023',
	NULL, 'waiting on a future token is an error, not a hang');
SELECT throws_ok($$SELECT * FROM barrier_wait_all('{1000000000000}')$$, '22023',
	NULL, 'wait_all on a future token: 22023');
SELECT throws_ok($$SELECT barrier_status('0')$$, '22023', NULL, 'token 0: 22023');
SELECT throws_ok($$SELECT barrier_status('3')$$, '55000', NULL, 'forgotten token: 55000');
SELECT throws_ok($$SELECT barrier_wait('3', '1s')$$, '55000', NULL, 'waiting on a forgotten token: 55000');
SELECT throws_ok($$SELECT barrier_wait('2', '-1s')$$, '22023',
	'barrier timeout must not be negative', 'negative timeout: 22023');
SELECT throws_ok($$SELECT barrier_wait(NULL, '-1s')$$, '22023', NULL,
	'negative timeout is refused even with a NULL token');
SELECT throws_ok($$SELECT barrier_wait('2', '178000000 years')$$, '22023', NULL,
	'timeout out of range: 22023');
SELECT throws_ok($$SELECT * FROM barrier_wait_all('{{2},{2}}')$$, '2202E', NULL,
	'two-dimensional token array: 2202E');

SELECT throws_ok($$SELECT * FROM barrier_wait_any('{1000000000000}')$$, '22023',
	NULL, 'wait_any on a future token: 22023');
SELECT throws_ok($$SELECT * FROM barrier_wait_any('{{2},{2}}')$$, '2202E', NULL,
	'wait_any, two-dimensional token array: 2202E');

SELECT throws_ok($$SELECT * FROM barrier_waiters()$$, '55000', NULL,
	'barrier_waiters() without shared_preload_libraries: 55000');

-- counters of this session
SELECT is((SELECT scope FROM barrier_stats()), 'session',
	'without shared_preload_libraries the counters are this session''s');
SELECT cmp_ok((SELECT enqueued FROM barrier_stats()), '>=', 3::bigint,
	'enqueues are counted');
SELECT cmp_ok((SELECT enqueued_aborted FROM barrier_stats()), '>=', 1::bigint,
	'the rolled-back savepoint''s token is counted as aborted');

SELECT * FROM finish();
ROLLBACK;
