--
-- The SQL surface: objects, their properties, and bad input.
-- (pg_regress has already run CREATE EXTENSION tx_barrier.)
--

-- the state vocabulary is pg_xact_status's
SELECT enumlabel FROM pg_enum
 WHERE enumtypid = 'barrier_state'::regtype ORDER BY enumsortorder;

-- every function is volatile, parallel unsafe, and lives in pg_catalog
SELECT p.oid::regprocedure AS function, provolatile, proparallel, proisstrict,
       pg_get_function_result(p.oid) AS result, n.nspname
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE proname LIKE 'barrier\_%'
 ORDER BY 1::text;

SELECT pg_get_function_arguments('barrier_wait(xid8,interval)'::regprocedure);
SELECT pg_get_function_arguments('barrier_wait_all(xid8[],interval)'::regprocedure);

-- durable tokens are the default (the setting exists once the library is
-- loaded, which the first call of any function does)
SELECT barrier_status('2') IS NOT NULL AS loaded;
SHOW tx_barrier.durable_tokens;

-- NULL in, NULL out
SELECT barrier_status(NULL) IS NULL AS status_null,
       barrier_wait(NULL) IS NULL AS wait_null,
       barrier_wait(NULL, '1s') IS NULL AS wait_null_timeout;
SELECT count(*) FROM barrier_wait_all(NULL);
SELECT count(*) FROM barrier_wait_all('{}');
SELECT token IS NULL AS token_null, state IS NULL AS state_null
  FROM barrier_wait_all(ARRAY[NULL]::xid8[]);

-- bad tokens: never a hang or a guess
SELECT barrier_status('0');
SELECT barrier_wait('0');
SELECT barrier_status('4294967298');	-- epoch 1, xid 2: not a real transaction
SELECT barrier_status('1000000000000');	-- far in the future
SELECT barrier_wait('1000000000000');
SELECT barrier_wait('1000000000000', '0');
SELECT * FROM barrier_wait_all(ARRAY['1000000000000']::xid8[]);
SELECT barrier_status('3');				-- older than the commit log
SELECT barrier_wait('3');

-- bootstrap and frozen xids are committed by definition
SELECT barrier_status('1'), barrier_status('2'), barrier_wait('2', '0');

-- bad timeouts, checked even with a NULL token
SELECT barrier_wait(NULL, '-1 ms');
SELECT barrier_wait('2', '-1 ms');
SELECT barrier_wait('2', '1 day -25 hours');
SELECT * FROM barrier_wait_all(ARRAY['2']::xid8[], '-1s');
SELECT barrier_wait('2', '178000000 years');	-- overflows microseconds
-- an interval that is positive in total is fine
SELECT barrier_wait('2', '1 day -23 hours');
SELECT barrier_wait('2', '1 month');

-- multidimensional token arrays are refused
SELECT * FROM barrier_wait_all('{{2},{2}}'::xid8[]);

-- the install script survives a hostile search_path: types that shadow
-- pg_catalog's must not be picked up
CREATE SCHEMA hostile;
CREATE DOMAIN hostile.xid8 AS text;
CREATE DOMAIN hostile.interval AS text;
CREATE FUNCTION hostile.barrier_enqueue() RETURNS int LANGUAGE sql AS 'SELECT 42';
DROP EXTENSION tx_barrier;
SET search_path = hostile, pg_catalog;
CREATE EXTENSION tx_barrier;
RESET search_path;
SELECT pg_get_function_identity_arguments('pg_catalog.barrier_wait_all'::regproc) AS args;
SELECT pg_typeof(pg_catalog.barrier_enqueue()) AS enqueue_type;
DROP SCHEMA hostile CASCADE;

-- the extension can be dropped and re-created
DROP EXTENSION tx_barrier;
SELECT count(*) FROM pg_proc WHERE proname LIKE 'barrier\_%';
CREATE EXTENSION tx_barrier;

-- the waiter registry lives in shared memory, which needs preloading
SELECT * FROM barrier_waiters();
