#!/usr/bin/env bash
# The token reservation guide (docs/guides/token-reservation.md), on a
# cluster of its own with reservation.conf: 200 barrier transactions need
# only a few WAL records (barrier_stats), and after a crash a token whose
# transaction was open reads "aborted" and is never handed out again.
. "$TXB_ROOT/docs/samples/lib.sh"

here=$TXB_ROOT/docs/samples/token-reservation
txb_scratch top reservation
mkdir -p "$top/pg"
mapfile -t conf < <(grep -v '^#' "$here/reservation.conf")
txb_cluster_start_free "$top/pg" port "${conf[@]}" || sample_fail "server did not start"
export PGHOST=$top/pg PGPORT=$port PGDATABASE=postgres
sample_psql postgres "CREATE EXTENSION tx_barrier" "CREATE TABLE t (x int)"
[ "$(sample_psql postgres "SHOW tx_barrier.token_reservation")" = on ]

echo "== 200 barrier transactions"
for i in $(seq 1 200); do
	printf 'BEGIN; INSERT INTO t VALUES (%d); SELECT barrier_enqueue(); COMMIT;\n' "$i"
done | psql -X -q -At >/dev/null
stats=$(sample_psql postgres "SELECT enqueued, token_records, tokens_covered FROM barrier_stats()")
IFS='|' read -r enq recs covered <<<"$stats"
echo "enqueued $enq, token records $recs, tokens covered $covered"
[ "$enq" -ge 200 ] && [ "$recs" -le 5 ] && [ "$covered" -ge 195 ] || sample_fail "stats: $stats"

echo "== a token whose transaction is open when the server crashes"
mkfifo "$SAMPLE_DIR/in"
psql -X -At -q <"$SAMPLE_DIR/in" >"$SAMPLE_DIR/producer.out" 2>&1 &
ppid=$!
exec {fd}>"$SAMPLE_DIR/in"
echo "BEGIN; INSERT INTO t VALUES (0); SELECT barrier_enqueue();" >&"$fd"
sample_wait_log "$SAMPLE_DIR/producer.out" '^[0-9]+$'
token=$(head -1 "$SAMPLE_DIR/producer.out")
txb_as_owner "$PG_BINDIR/pg_ctl" -D "$top/pg/data" -m immediate -w stop >/dev/null
exec {fd}>&-
wait "$ppid" || true
txb_cluster_run "$top/pg" || sample_fail "restart"
state=$(sample_psql postgres "SELECT barrier_status('$token')")
next=$(psql -X -At -q -c "BEGIN" -c "SELECT barrier_enqueue()" -c "COMMIT")
echo "after the crash: token $token is $state; the next token is $next"
[ "$state" = aborted ] && [ "$next" -gt "$token" ] || sample_fail "state $state, next $next"
echo "token-reservation: ok"
