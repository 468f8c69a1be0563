#!/usr/bin/env bash
# The failover guide (docs/guides/failover.md): a primary with a
# synchronous standby (primary.conf).  A producer takes a token (which
# barrier_enqueue returns only once the standby has flushed it) and never
# commits; the primary crashes (immediate stop); the standby is promoted.
# There the token reads "aborted" and new transactions get ids beyond it.
. "$TXB_ROOT/docs/samples/lib.sh"

here=$TXB_ROOT/docs/samples/failover
txb_scratch top failover
mkdir -p "$top/primary" "$top/standby"
mapfile -t conf < <(grep -v '^#' "$here/primary.conf")
txb_cluster_start_free "$top/primary" pport "${conf[@]}" || sample_fail "primary did not start"
primary="host=$top/primary port=$pport user=postgres dbname=postgres"
sport=$(txb_free_port)
mapfile -t sconf < <(grep -v '^#' "$here/standby.conf")
txb_standby_start "$primary application_name=standby1" "$top/standby" "$sport" "${sconf[@]}" ||
	sample_fail "standby did not start"
standby="host=$top/standby port=$sport user=postgres dbname=postgres"
psql "$primary" -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION tx_barrier" -c "CREATE TABLE t (x int)"
[ "$(psql "$primary" -X -At -c "SELECT sync_state FROM pg_stat_replication")" = sync ] ||
	sample_fail "the standby is not synchronous"

echo "== a producer takes a token and is still open when the primary crashes"
mkfifo "$SAMPLE_DIR/in"
psql "$primary" -X -At -q <"$SAMPLE_DIR/in" >"$SAMPLE_DIR/producer.out" 2>&1 &
ppid=$!
exec {fd}>"$SAMPLE_DIR/in"
echo "BEGIN; INSERT INTO t VALUES (1); SELECT barrier_enqueue();" >&"$fd"
sample_wait_log "$SAMPLE_DIR/producer.out" '^[0-9]+$'
token=$(head -1 "$SAMPLE_DIR/producer.out")
echo "token $token (flushed by the standby before it was returned)"
txb_as_owner "$PG_BINDIR/pg_ctl" -D "$top/primary/data" -m immediate -w stop >/dev/null
exec {fd}>&-
wait "$ppid" || true

echo "== promote the standby"
txb_as_owner "$PG_BINDIR/pg_ctl" -D "$top/standby/data" -w promote >/dev/null
txb_wait_for "psql \"$standby\" -X -At -c 'SELECT pg_is_in_recovery()'" f || sample_fail "not promoted"
state=$(psql "$standby" -X -At -c "SELECT barrier_wait('$token', '5s')")
echo "on the promoted server: token $token is $state"
[ "$state" = aborted ] || sample_fail "token reads $state"
next=$(psql "$standby" -X -At -q -c "SET statement_timeout = '10s'" -c "BEGIN" \
	-c "SELECT barrier_enqueue()" -c "COMMIT")
[ -n "$next" ] && [ "$next" -gt "$token" ] || sample_fail "new token $next is not beyond $token"
[ "$(psql "$standby" -X -At -c "SELECT barrier_status('$token')")" = aborted ]
echo "a new transaction's token is $next: the old one still reads aborted"
echo "failover: ok"
