/*
 * portable/tx_barrier_portable.sql
 *
 * The portable edition of tx_barrier: the same SQL API as the C extension
 * (barrier_enqueue, barrier_status, barrier_wait, barrier_wait_all and the
 * barrier_state enum) in plain SQL and PL/pgSQL, for servers where no C
 * extension can be installed (managed services).  Any role that may create
 * a schema runs it, no superuser needed:
 *
 *     psql -v schema=tx_barrier -f portable/tx_barrier_portable.sql
 *
 * (schema defaults to tx_barrier; it is created if missing).  The same
 * text, without the lines marked "psql only", is the body of the pg_tle
 * extension that portable/pg_tle_install.psql registers.
 *
 * Running it again into the same schema, or running a newer version of it
 * over an older install, is an upgrade: types and tables are created only
 * where missing (the marker tables, and so every outstanding token, are
 * kept), functions are replaced.  barrier_portable_version() names the
 * version installed; a NOTICE names it at the end.
 *
 * How it works (see portable/README.md for the contract):
 *
 * - A token is a 63-bit number: a random 31-bit nonce above the low 32 bits
 *   of the producer's top-level xid.  barrier_enqueue() inserts a marker row
 *   holding the token in the current (sub)transaction.  The marker commits
 *   exactly when the (sub)transaction does, and is durable exactly when its
 *   commit is, so after a crash a token never names an unrelated
 *   transaction unless that one reused the xid and drew the same nonce.
 * - Waiting: the marker table has a unique index on the token.  The waiter
 *   inserts the same token with ON CONFLICT DO NOTHING inside a
 *   subtransaction that it always rolls back.  While the producer's marker
 *   is uncommitted, the unique check sleeps on the producer's transaction
 *   lock (the lock the C edition waits on, visible as such in pg_locks) and
 *   wakes when the (sub)transaction ends: a conflict then means the marker
 *   committed, an insert means it did not.  No polling, lock_timeout bounds
 *   the wait, deadlocks are detected.
 * - Cleanup: markers live in eight list partitions, one per "bucket" of
 *   2^22 xids, used as a ring.  barrier_enqueue() empties, with TRUNCATE,
 *   the partition that the bucket after next will use, once per bucket:
 *   no VACUUM, no reaper.  barrier_ring records what was emptied, so an
 *   expired token gets an error, not a guess.
 * - Hot standbys and read-only transactions cannot insert: there the wait
 *   polls marker visibility with a backoff capped at 64 ms.
 *
 * Every function is SECURITY DEFINER (the marker tables are writable by
 * their owner only, so markers cannot be forged) with a fixed search_path
 * of pg_catalog, the install schema, pg_temp.
 */

-- psql only: target schema (psql -v schema=NAME), one transaction
\if :{?schema} \else \set schema tx_barrier \endif
\set ON_ERROR_STOP on
\set QUIET on
BEGIN; -- psql only
-- (a re-install: no "already exists, skipping" notices)
SET LOCAL client_min_messages = warning; -- psql only
CREATE SCHEMA IF NOT EXISTS :"schema"; -- psql only
SET LOCAL search_path = :"schema"; -- psql only

-- From here on, CREATE EXTENSION has set the search_path to the target
-- schema as well.  Pin it to that schema, then pg_catalog, then pg_temp
-- (never implicitly first), so that nothing below, and through SET
-- search_path FROM CURRENT no function, resolves a name in a schema that
-- others can write to.
DO $$
BEGIN
	PERFORM pg_catalog.set_config('search_path',
		pg_catalog.quote_ident(pg_catalog.current_schema()) || ', pg_catalog, pg_temp',
		true);
END
$$;

-- Created only where missing: a re-install keeps it (and every column and
-- function that uses it).
DO $$
BEGIN
	IF pg_catalog.to_regtype(pg_catalog.quote_ident(pg_catalog.current_schema())
							 || '.barrier_state') IS NULL THEN
		CREATE TYPE barrier_state AS ENUM ('in progress', 'committed', 'aborted');
	END IF;
END
$$;

COMMENT ON TYPE barrier_state IS
'outcome of the transaction a barrier token names (the vocabulary of pg_xact_status)';

-- Marker rows: one per token, in the partition of its xid's bucket
-- ((xid >> 22) % 8).  Never updated, never deleted: partitions are emptied
-- whole by TRUNCATE.  Kept by a re-install, with their outstanding tokens.
CREATE TABLE IF NOT EXISTS barrier_marker (
	slot int2 NOT NULL,
	token int8 NOT NULL,
	PRIMARY KEY (slot, token)
) PARTITION BY LIST (slot);

CREATE TABLE IF NOT EXISTS barrier_marker_0 PARTITION OF barrier_marker FOR VALUES IN (0);
CREATE TABLE IF NOT EXISTS barrier_marker_1 PARTITION OF barrier_marker FOR VALUES IN (1);
CREATE TABLE IF NOT EXISTS barrier_marker_2 PARTITION OF barrier_marker FOR VALUES IN (2);
CREATE TABLE IF NOT EXISTS barrier_marker_3 PARTITION OF barrier_marker FOR VALUES IN (3);
CREATE TABLE IF NOT EXISTS barrier_marker_4 PARTITION OF barrier_marker FOR VALUES IN (4);
CREATE TABLE IF NOT EXISTS barrier_marker_5 PARTITION OF barrier_marker FOR VALUES IN (5);
CREATE TABLE IF NOT EXISTS barrier_marker_6 PARTITION OF barrier_marker FOR VALUES IN (6);
CREATE TABLE IF NOT EXISTS barrier_marker_7 PARTITION OF barrier_marker FOR VALUES IN (7);

-- Per slot, the bucket it was last emptied for: its markers of older
-- buckets are gone, so their tokens have expired.
CREATE TABLE IF NOT EXISTS barrier_ring (
	slot int2 PRIMARY KEY,
	emptied_for int8 NOT NULL
);
-- (a plain read of what is there: a re-install never waits for a producer
-- that is updating a ring row)
INSERT INTO barrier_ring
SELECT s, 0 FROM generate_series(0, 7) s
 WHERE NOT EXISTS (SELECT FROM barrier_ring r WHERE r.slot = s);

COMMENT ON TABLE barrier_marker IS
'tx_barrier portable edition: one row per barrier token, emptied by TRUNCATE per xid bucket';
COMMENT ON TABLE barrier_ring IS
'tx_barrier portable edition: bucket each marker partition was last emptied for';

REVOKE ALL ON barrier_marker, barrier_ring FROM PUBLIC;

-- The full (epoch-qualified) xid a token's low 32 bits name: the one
-- nearest to the next xid.  Raises 22023 for what cannot be a token.
CREATE OR REPLACE FUNCTION barrier_token_xid(token xid8, OUT xid int8, OUT next int8)
LANGUAGE plpgsql STABLE STRICT
SET search_path FROM CURRENT
AS $$
DECLARE
	t numeric := token::text::numeric;
	low int8;
BEGIN
	-- tokens are below 2^63 and carry a normal xid (not 0, 1 or 2)
	IF t >= 9223372036854775808 OR t % 4294967296 < 3 THEN
		RAISE EXCEPTION 'barrier token % does not name a transaction', token
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	low := (t % 4294967296)::int8;
	next := pg_snapshot_xmax(pg_current_snapshot())::text::int8;
	xid := (next & ~4294967295::int8) | low;
	IF xid > next + 2147483647 THEN
		xid := xid - 4294967296;
	ELSIF xid < next - 2147483648 THEN
		xid := xid + 4294967296;
	END IF;
	IF xid < 3 THEN
		RAISE EXCEPTION 'barrier token % does not name a transaction', token
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
END
$$;

-- pg_xact_status() of a full xid, or 'unseen' for an xid at or past the
-- server's next xid, where pg_xact_status() raises "transaction ID ... is
-- in the future" (22023) and the C edition's "not yet seen" case begins.
-- On a primary such an xid was never handed out, or was handed out before
-- a crash that lost every trace of it (a portable token is not WAL-logged
-- before its commit); on a standby replay has not reached it yet.  NULL
-- (the commit log has forgotten) comes back as 'forgotten'.  Most xids are
-- below the snapshot's xmax, which is never past the next xid: only the
-- others need the subtransaction that catches the error.
CREATE OR REPLACE FUNCTION barrier_xact_status(xid int8)
RETURNS text
LANGUAGE plpgsql VOLATILE STRICT
SET search_path FROM CURRENT
AS $$
BEGIN
	IF xid < pg_snapshot_xmax(pg_current_snapshot())::text::int8 THEN
		RETURN coalesce(pg_xact_status(xid::text::xid8), 'forgotten');
	END IF;
	BEGIN
		RETURN coalesce(pg_xact_status(xid::text::xid8), 'forgotten');
	EXCEPTION WHEN invalid_parameter_value THEN
		RETURN 'unseen';
	END;
END
$$;

-- Empties, once per bucket, the marker partition that the bucket after
-- next will use.  Called by barrier_enqueue() when this session first
-- sees a new bucket; cheap when another session has done it.  The
-- TRUNCATE is part of the caller's transaction: a rollback undoes it and
-- a later call redoes it.
CREATE OR REPLACE FUNCTION barrier_ring_advance(own_bucket int8)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
	target int8;
	emptied int8;
BEGIN
	-- needs a fresh view of the next xid: READ COMMITTED only (a stale
	-- snapshot could name a slot that is in use again)
	IF current_setting('transaction_isolation') <> 'read committed' THEN
		RETURN;
	END IF;
	target := (pg_snapshot_xmax(pg_current_snapshot())::text::int8 >> 22) + 2;
	SELECT r.emptied_for INTO emptied FROM barrier_ring r WHERE r.slot = target % 8;
	IF emptied < target THEN
		SELECT r.emptied_for INTO emptied FROM barrier_ring r
		 WHERE r.slot = target % 8 FOR UPDATE SKIP LOCKED;
		IF NOT FOUND THEN
			RETURN;				-- another transaction is at it
		END IF;
		IF emptied < target THEN
			BEGIN
				EXECUTE format('LOCK TABLE %I.%I IN ACCESS EXCLUSIVE MODE NOWAIT',
							   current_schema(), 'barrier_marker_' || target % 8);
				EXECUTE format('TRUNCATE %I.%I',
							   current_schema(), 'barrier_marker_' || target % 8);
				UPDATE barrier_ring SET emptied_for = target WHERE slot = target % 8;
			EXCEPTION WHEN lock_not_available THEN
				RETURN;			-- in use: a later call retries
			END;
		END IF;
	END IF;
	PERFORM set_config('tx_barrier_portable.bucket', own_bucket::text, false);
END
$$;

CREATE OR REPLACE FUNCTION barrier_enqueue()
RETURNS xid8
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
	xid int8;
	tok int8;
	part int2;
	sub text;
	last text;
BEGIN
	IF pg_is_in_recovery() THEN
		RAISE EXCEPTION 'cannot enqueue a barrier on a hot standby'
			USING ERRCODE = 'read_only_sql_transaction';
	END IF;
	xid := pg_current_xact_id()::text::int8;
	-- a 31-bit nonce from the strong random source (setseed() cannot
	-- replay it)
	tok := (('x' || substr(gen_random_uuid()::text, 1, 8))::bit(32)::int8
			  & 2147483647) << 32 | (xid & 4294967295);
	-- straight into the partition: a partitioned table cannot return xmin
	part := (xid >> 22) % 8;
	IF part = 0 THEN
		INSERT INTO barrier_marker_0 VALUES (part, tok) RETURNING xmin::text INTO sub;
	ELSIF part = 1 THEN
		INSERT INTO barrier_marker_1 VALUES (part, tok) RETURNING xmin::text INTO sub;
	ELSIF part = 2 THEN
		INSERT INTO barrier_marker_2 VALUES (part, tok) RETURNING xmin::text INTO sub;
	ELSIF part = 3 THEN
		INSERT INTO barrier_marker_3 VALUES (part, tok) RETURNING xmin::text INTO sub;
	ELSIF part = 4 THEN
		INSERT INTO barrier_marker_4 VALUES (part, tok) RETURNING xmin::text INTO sub;
	ELSIF part = 5 THEN
		INSERT INTO barrier_marker_5 VALUES (part, tok) RETURNING xmin::text INTO sub;
	ELSIF part = 6 THEN
		INSERT INTO barrier_marker_6 VALUES (part, tok) RETURNING xmin::text INTO sub;
	ELSE
		INSERT INTO barrier_marker_7 VALUES (part, tok) RETURNING xmin::text INTO sub;
	END IF;
	-- The marker's xmin is the current (sub)transaction's xid: the same
	-- one as the previous call's means the same (sub)transaction, which
	-- keeps its first token.  The cache is transaction-local, and a
	-- rolled-back savepoint restores the value it had before.
	last := current_setting('tx_barrier_portable.last', true);
	IF split_part(last, ':', 1) = sub THEN
		DELETE FROM barrier_marker m WHERE m.slot = part AND m.token = tok;
		RETURN split_part(last, ':', 2)::xid8;
	END IF;
	PERFORM set_config('tx_barrier_portable.last', sub || ':' || tok, true);
	IF coalesce(current_setting('tx_barrier_portable.bucket', true), '')
		<> (xid >> 22)::text THEN
		PERFORM barrier_ring_advance(xid >> 22);
	END IF;
	RETURN tok::text::xid8;
END
$$;

COMMENT ON FUNCTION barrier_enqueue() IS
'token naming the current (sub)transaction, backed by a marker row that commits with it';

-- The state of one token.  wait_ms: NULL waits without limit, 0 does not
-- wait, otherwise the wait is bounded (in milliseconds).
CREATE OR REPLACE FUNCTION barrier_resolve(token xid8, wait_ms float8)
RETURNS barrier_state
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
SET lock_timeout = 0	-- the caller's does not apply; ours ends with the call
AS $$
DECLARE
	tx record;
	t int8;
	s int2;
	inserted int8;
	state barrier_state;
	xstatus text;
	deadline timestamptz;
	nap float8 := 0.001;
BEGIN
	tx := barrier_token_xid(token);
	t := token::text::int8;
	s := ((tx.xid >> 22) % 8)::int2;

	-- the caller's own transaction: it cannot end while we wait
	IF pg_current_xact_id_if_assigned()::text::int8 = tx.xid THEN
		IF EXISTS (SELECT FROM barrier_marker m WHERE m.slot = s AND m.token = t) THEN
			RETURN 'in progress';
		END IF;
		RETURN 'aborted';		-- its savepoint was rolled back, or no such token
	END IF;

	IF pg_is_in_recovery() OR current_setting('transaction_read_only')::bool THEN
		-- no insert possible: poll marker visibility
		IF wait_ms IS NOT NULL THEN
			deadline := clock_timestamp() + wait_ms * interval '1 ms';
		END IF;
		LOOP
			xstatus := barrier_xact_status(tx.xid);
			IF xstatus = 'unseen' THEN
				-- a primary (READ ONLY transaction): no transaction with
				-- that xid has started since the server (re)started, so
				-- none with this token can have committed: its own was
				-- lost in a crash, or it was never issued here.  A
				-- standby: replay has not reached it yet; poll on.
				xstatus := CASE WHEN pg_is_in_recovery() THEN NULL ELSE 'aborted' END;
			END IF;
			-- status first: once the transaction is no longer running, a
			-- new snapshot sees its marker if it committed
			IF EXISTS (SELECT FROM barrier_marker m WHERE m.slot = s AND m.token = t) THEN
				RETURN 'committed';
			END IF;
			IF xstatus IN ('committed', 'aborted', 'forgotten') THEN
				IF xstatus = 'committed'
					AND current_setting('transaction_isolation') <> 'read committed'
					AND NOT pg_visible_in_snapshot(tx.xid::text::xid8, pg_current_snapshot()) THEN
					RAISE EXCEPTION 'outcome of barrier token % is not visible to this transaction''s snapshot', token
						USING ERRCODE = 'object_not_in_prerequisite_state',
						HINT = 'Wait first, then read: call barrier_wait in autocommit or READ COMMITTED.';
				END IF;
				state := 'aborted';
				EXIT;
			END IF;
			IF wait_ms = 0 OR clock_timestamp() >= deadline THEN
				RETURN 'in progress';
			END IF;
			PERFORM pg_sleep(CASE WHEN deadline IS NULL THEN nap
							 ELSE least(nap, extract(epoch FROM deadline - clock_timestamp())::float8) END);
			nap := least(nap * 2, 0.064);
		END LOOP;
	ELSE
		-- makes status checks cheap; 'unseen': an xid no transaction has
		-- had since the server (re)started, as on the polling path
		xstatus := barrier_xact_status(tx.xid);
		IF xstatus = 'in progress' AND wait_ms = 0 THEN
			RETURN 'in progress';
		ELSIF xstatus IN ('aborted', 'unseen') THEN
			state := 'aborted';
		ELSIF xstatus = 'committed'
			AND EXISTS (SELECT FROM barrier_marker m WHERE m.slot = s AND m.token = t) THEN
			state := 'committed';	-- finished and visible: no subtransaction needed
		ELSE
			BEGIN
				PERFORM set_config('lock_timeout',
								   CASE WHEN wait_ms IS NULL THEN '0'
								   ELSE greatest(1, least(ceil(wait_ms), 2147483647))::int8::text END,
								   true);
				-- sleeps on the producer's transaction lock while its
				-- marker is uncommitted
				INSERT INTO barrier_marker (slot, token) VALUES (s, t)
					ON CONFLICT DO NOTHING;
				GET DIAGNOSTICS inserted = ROW_COUNT;
				IF inserted = 0 THEN
					state := 'committed';
				ELSE
					-- no marker: undo our row (a rollback of this block)
					RAISE EXCEPTION USING ERRCODE = 'TXB01';
				END IF;
			EXCEPTION
				WHEN SQLSTATE 'TXB01' THEN
					state := 'aborted';
				WHEN lock_not_available THEN
					RETURN 'in progress';
				WHEN serialization_failure THEN
					-- REPEATABLE READ/SERIALIZABLE: the marker committed
					-- after this transaction's snapshot was taken (or, in
					-- SERIALIZABLE, a conflict unrelated to the marker
					-- whose transaction has not committed: passed on)
					IF barrier_xact_status(tx.xid) IS DISTINCT FROM 'committed' THEN
						RAISE;
					END IF;
					RAISE WARNING 'barrier transaction committed after this transaction''s snapshot was taken'
						USING DETAIL = format('Its changes are not visible for the rest of this %s transaction.',
											  upper(current_setting('transaction_isolation'))),
						HINT = 'Wait first, then read: call barrier_wait() in autocommit or in a READ COMMITTED transaction before starting the one that reads.';
					RETURN 'committed';
			END;
		END IF;
	END IF;

	IF state = 'aborted' AND (tx.xid >> 22) <
		(SELECT r.emptied_for FROM barrier_ring r WHERE r.slot = s) THEN
		RAISE EXCEPTION 'outcome of barrier token % is no longer known', token
			USING ERRCODE = 'object_not_in_prerequisite_state',
			DETAIL = 'Its marker partition has been emptied: tokens live for at least 5 x 2^22 transactions.';
	END IF;
	RETURN state;
END
$$;

-- Milliseconds in a timeout; 22023 for a negative one.
CREATE OR REPLACE FUNCTION barrier_timeout_ms(timeout interval)
RETURNS float8
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
DECLARE
	ms float8;
BEGIN
	IF timeout IS NULL THEN
		RETURN NULL;
	END IF;
	ms := extract(epoch FROM timeout)::float8 * 1000;
	IF ms < 0 THEN
		RAISE EXCEPTION 'barrier timeout must not be negative'
			USING ERRCODE = 'invalid_parameter_value';
	ELSIF ms = 'infinity'::float8 OR ms > 9.2e15 THEN
		RAISE EXCEPTION 'barrier timeout is out of range'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN ms;
END
$$;

CREATE OR REPLACE FUNCTION barrier_status(token xid8)
RETURNS barrier_state
LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$ SELECT barrier_resolve(token, 0) $$;

COMMENT ON FUNCTION barrier_status(xid8) IS
'state of the transaction a token names, without waiting';

CREATE OR REPLACE FUNCTION barrier_wait(token xid8, timeout interval DEFAULT NULL)
RETURNS barrier_state
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
	ms float8 := barrier_timeout_ms(timeout);
BEGIN
	IF token IS NULL THEN
		RETURN NULL;
	END IF;
	RETURN barrier_resolve(token, ms);
END
$$;

COMMENT ON FUNCTION barrier_wait(xid8, interval) IS
'wait until the transaction a token names has ended (NULL timeout: no limit)';

CREATE OR REPLACE FUNCTION barrier_wait_all(tokens xid8[], timeout interval DEFAULT NULL,
								 OUT token xid8, OUT state barrier_state)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE SECURITY DEFINER
ROWS 10
SET search_path FROM CURRENT
AS $$
DECLARE
	ms float8 := barrier_timeout_ms(timeout);
	deadline timestamptz;
	left_ms float8;
BEGIN
	IF array_ndims(tokens) > 1 THEN
		RAISE EXCEPTION 'barrier tokens must be a one-dimensional array'
			USING ERRCODE = 'array_subscript_error';
	END IF;
	IF ms IS NOT NULL THEN
		deadline := clock_timestamp() + ms * interval '1 ms';
	END IF;
	FOREACH token IN ARRAY coalesce(tokens, '{}') LOOP
		IF token IS NULL THEN
			state := NULL;
		ELSE
			IF deadline IS NOT NULL THEN
				left_ms := greatest(0, extract(epoch FROM deadline - clock_timestamp())::float8 * 1000);
			END IF;
			state := barrier_resolve(token, left_ms);
		END IF;
		RETURN NEXT;
	END LOOP;
END
$$;

COMMENT ON FUNCTION barrier_wait_all(xid8[], interval) IS
'wait until every token''s transaction has ended; the timeout bounds the whole call';

-- The version of this script: EXTVERSION in the top Makefile, checked by
-- tools/layers/06-release.sh.
CREATE OR REPLACE FUNCTION barrier_portable_version()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path FROM CURRENT
AS $$ SELECT '1.2'::text $$; -- the version: EXTVERSION

COMMENT ON FUNCTION barrier_portable_version() IS
'version of the tx_barrier portable edition installed in this schema';

-- Internals are not for callers.
REVOKE ALL ON FUNCTION barrier_token_xid(xid8), barrier_xact_status(int8),
	barrier_ring_advance(int8), barrier_resolve(xid8, float8),
	barrier_timeout_ms(interval) FROM PUBLIC;

RESET client_min_messages; -- psql only
DO $$
BEGIN
	RAISE NOTICE 'tx_barrier portable edition % installed in schema %',
		barrier_portable_version(), pg_catalog.current_schema();
END
$$;

COMMIT; -- psql only
