/* extension/tx_barrier.sql: install script of the current version
 * (EXTVERSION in the Makefile), built into tx_barrier--EXTVERSION.sql.  A
 * change here needs the same change in the upgrade script
 * tx_barrier--PREVIOUS--EXTVERSION.sql (tools/layers/15-upgrade.sh). */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION tx_barrier" to load this file. \quit

-- Every name below is schema-qualified: the script must not depend on the
-- search_path of whoever runs CREATE EXTENSION.

CREATE TYPE @extschema@.barrier_state AS ENUM ('in progress', 'committed', 'aborted');

COMMENT ON TYPE @extschema@.barrier_state IS
'outcome of the transaction a barrier token names (the vocabulary of pg_xact_status)';

CREATE FUNCTION @extschema@.barrier_enqueue()
RETURNS pg_catalog.xid8
AS 'MODULE_PATHNAME', 'barrier_enqueue'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.barrier_enqueue() IS
'token naming the current (sub)transaction, made crash-safe before it is returned';

CREATE FUNCTION @extschema@.barrier_status(token pg_catalog.xid8)
RETURNS @extschema@.barrier_state
AS 'MODULE_PATHNAME', 'barrier_status'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.barrier_status(pg_catalog.xid8) IS
'state of the transaction a token names, without waiting';

CREATE FUNCTION @extschema@.barrier_wait(token pg_catalog.xid8,
										 timeout pg_catalog.interval DEFAULT NULL)
RETURNS @extschema@.barrier_state
AS 'MODULE_PATHNAME', 'barrier_wait'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.barrier_wait(pg_catalog.xid8, pg_catalog.interval) IS
'wait until the transaction a token names has ended (NULL timeout: no limit)';

CREATE FUNCTION @extschema@.barrier_wait_all(tokens pg_catalog.xid8[],
											 timeout pg_catalog.interval DEFAULT NULL,
											 OUT token pg_catalog.xid8,
											 OUT state @extschema@.barrier_state)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'barrier_wait_all'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE ROWS 10;

COMMENT ON FUNCTION @extschema@.barrier_wait_all(pg_catalog.xid8[], pg_catalog.interval) IS
'wait until every token''s transaction has ended; the timeout bounds the whole call';

CREATE FUNCTION @extschema@.barrier_stats(
	OUT scope pg_catalog.text,
	OUT enqueued pg_catalog.int8,
	OUT enqueued_committed pg_catalog.int8,
	OUT enqueued_aborted pg_catalog.int8,
	OUT token_records pg_catalog.int8,
	OUT tokens_covered pg_catalog.int8,
	OUT waits pg_catalog.int8,
	OUT waits_committed pg_catalog.int8,
	OUT waits_aborted pg_catalog.int8,
	OUT waits_timed_out pg_catalog.int8)
RETURNS record
AS 'MODULE_PATHNAME', 'barrier_stats'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.barrier_stats() IS
'barrier counters: cluster-wide when tx_barrier is in shared_preload_libraries, else this session''s';

CREATE FUNCTION @extschema@.barrier_waiters(
	OUT pid pg_catalog.int4,
	OUT token pg_catalog.xid8,
	OUT waiting_since pg_catalog.timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'barrier_waiters'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.barrier_waiters() IS
'sessions blocked in barrier_wait or barrier_wait_all, with their tokens (needs shared_preload_libraries)';

-- Who waits on which token is as private as pg_stat_activity's query text.
REVOKE ALL ON FUNCTION @extschema@.barrier_waiters() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.barrier_waiters() TO pg_read_all_stats;
