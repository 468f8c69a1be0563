/* extension/tx_barrier--1.1--1.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION tx_barrier UPDATE TO '1.2'" to load this file. \quit

-- 1.2 adds barrier_wait_any().  SQL changes made for 1.2 go here and into
-- tx_barrier.sql alike.

CREATE FUNCTION @extschema@.barrier_wait_any(tokens pg_catalog.xid8[],
											 timeout pg_catalog.interval DEFAULT NULL,
											 OUT token pg_catalog.xid8,
											 OUT state @extschema@.barrier_state)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'barrier_wait_any'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE ROWS 1;

COMMENT ON FUNCTION @extschema@.barrier_wait_any(pg_catalog.xid8[], pg_catalog.interval) IS
'wait until at least one token''s transaction has ended; rows for every token that has (none on timeout)';

COMMENT ON FUNCTION @extschema@.barrier_waiters() IS
'sessions blocked in barrier_wait, barrier_wait_all or barrier_wait_any, with their tokens (needs shared_preload_libraries)';
