#!/usr/bin/env bash
# The operations guide (docs/guides/operations.md), on a cluster of its own
# with tx_barrier in shared_preload_libraries: a waiting worker is in
# pg_stat_activity (Lock/transactionid) and in barrier_waiters() with its
# full token and the producer as blocker; barrier_stats() counts cluster-
# wide; databases at versions 1.1 and 1.0 are updated with ALTER EXTENSION
# UPDATE to the current version, which adds barrier_wait_any(), keeping a
# view that depends on barrier_state.
. "$TXB_ROOT/docs/samples/lib.sh"

here=$TXB_ROOT/docs/samples/operations
txb_scratch top operations
mkdir -p "$top/pg"
txb_cluster_start_free "$top/pg" port "shared_preload_libraries = 'tx_barrier'" ||
	sample_fail "server did not start"
export PGHOST=$top/pg PGPORT=$port PGDATABASE=postgres
sample_psql postgres "CREATE EXTENSION tx_barrier"

echo "== a producer holds its transaction open; a worker waits"
mkfifo "$SAMPLE_DIR/answer"
psql -X -At -q -c "SET application_name = 'producer'" -f - <"$SAMPLE_DIR/answer" >"$SAMPLE_DIR/producer.out" 2>&1 &
ppid=$!
exec {fd}>"$SAMPLE_DIR/answer"
echo "BEGIN; SELECT barrier_enqueue();" >&"$fd"
sample_wait_log "$SAMPLE_DIR/producer.out" '^[0-9]+$'
token=$(head -1 "$SAMPLE_DIR/producer.out")
PGAPPNAME=worker psql -X -At -c "SELECT barrier_wait('$token', '30s')" >"$SAMPLE_DIR/worker.out" 2>&1 &
wpid=$!
sample_wait_blocked postgres "$token"

psql -X -q -f "$here/activity.sql"
[ "$(psql -X -At -f "$here/activity.sql" | cut -d'|' -f2)" = worker ] || sample_fail "not in pg_stat_activity"
psql -X -q -f "$here/waiters.sql"
row=$(psql -X -At -f "$here/waiters.sql")
IFS='|' read -r wpid_ user app wtoken since blocked <<<"$row"
producer_pid=$(sample_psql postgres "SELECT pid FROM pg_stat_activity WHERE application_name = 'producer'")
[ "$app" = worker ] && [ "$wtoken" = "$token" ] && [ "$blocked" = "{$producer_pid}" ] ||
	sample_fail "barrier_waiters: $row (producer $producer_pid)"

echo "COMMIT;" >&"$fd"
exec {fd}>&-
wait "$ppid"
wait "$wpid"
[ "$(cat "$SAMPLE_DIR/worker.out")" = committed ] || sample_fail "worker: $(cat "$SAMPLE_DIR/worker.out")"
psql -X -q -f "$here/stats.sql"
stats=$(psql -X -At -f "$here/stats.sql")
IFS='|' read -r scope enq enq_c enq_a recs covered waits w_c w_a w_t <<<"$stats"
[ "$scope" = cluster ] && [ "$enq" -ge 1 ] && [ "$enq_c" -ge 1 ] && [ "$waits" -ge 1 ] && [ "$w_c" -ge 1 ] ||
	sample_fail "barrier_stats: $stats"
echo "barrier_stats(): cluster-wide, counted the other sessions' token and wait"

current=$(sed -n 's/^EXTVERSION *= *//p' "$TXB_ROOT/Makefile")
has_wait_any="SELECT to_regprocedure('barrier_wait_any(xid8[],interval)') IS NOT NULL"
for old in 1.1 1.0; do
	echo "== ALTER EXTENSION tx_barrier UPDATE, from $old to $current"
	db=old_${old//./_}
	sample_psql postgres "CREATE DATABASE $db"
	psql -X -q -v ON_ERROR_STOP=1 -d "$db" <<SQL
CREATE EXTENSION tx_barrier VERSION '$old';
CREATE TABLE jobs (token xid8, state barrier_state);
CREATE VIEW job_states AS SELECT token, barrier_status(token) AS now FROM jobs;
SQL
	[ "$(sample_psql "$db" "$has_wait_any")" = f ] || sample_fail "$old has barrier_wait_any()"
	psql -X -q -d "$db" -f "$here/update.sql"
	[ "$(sample_psql "$db" "SELECT extversion FROM pg_extension WHERE extname = 'tx_barrier'")" = "$current" ] ||
		sample_fail "$old: not updated"
	[ "$(sample_psql "$db" "$has_wait_any")" = t ] || sample_fail "$old: no barrier_wait_any() after the update"
	sample_psql "$db" "SELECT count(*) FROM job_states" >/dev/null
	echo "updated from $old; barrier_wait_any() added; the view and the barrier_state column are kept"
done
echo "operations: ok"
