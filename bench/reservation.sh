#!/usr/bin/env bash
# Producer cost of the token modes, beside the baseline, in one run:
# pgbench's TPC-B-like transaction plus one call at its end (the token taken
# late, as most applications take it; bench/tpcb_barrier.sql and
# bench/tpcb_xactid.sql), each variant run in turn within every round so
# that all see the same machine noise.
#
#   baseline      + SELECT pg_current_xact_id()
#   durable       + SELECT barrier_enqueue()   (default: a record and flush
#                                               unless a newer commit covers it)
#   reservation   + SELECT barrier_enqueue()   with tx_barrier.token_reservation
#   relaxed       + SELECT barrier_enqueue()   with tx_barrier.durable_tokens off
#
#   bench/reservation.sh        (as root; about 4 minutes)
#
# Knobs: TXB_BENCH_CLIENTS (default 8), TXB_BENCH_SECONDS per run (15),
# TXB_BENCH_ROUNDS (3), TXB_BENCH_SCALE (10), PG_CONFIG (Debian's 15).
set -euo pipefail

TXB_ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLIENTS=${TXB_BENCH_CLIENTS:-8}
SECONDS_RUN=${TXB_BENCH_SECONDS:-15}
ROUNDS=${TXB_BENCH_ROUNDS:-3}
SCALE=${TXB_BENCH_SCALE:-10}

"$TXB_ROOT/tools/deps.sh"
"$TXB_ROOT/tools/install.sh"
. "$TXB_ROOT/tools/cluster.sh"

txb_scratch W bench-reservation
mkdir -p "$W/pg"
txb_cluster_start_free "$W/pg" PORT "shared_preload_libraries = 'tx_barrier'"
export PGHOST="$W/pg" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres
"$PG_BINDIR/psql" -X -q -c 'CREATE EXTENSION tx_barrier'
"$PG_BINDIR/pgbench" -q -i -s "$SCALE" >/dev/null 2>&1

variants="baseline durable reservation relaxed"
run() {
	local v=$1 file=tpcb_barrier.sql reservation=off durable=on
	case $v in
	baseline) file=tpcb_xactid.sql ;;
	reservation) reservation=on ;;
	relaxed) durable=off ;;
	esac
	"$PG_BINDIR/psql" -X -q -c "ALTER SYSTEM SET tx_barrier.token_reservation = $reservation" \
		-c "ALTER SYSTEM SET tx_barrier.durable_tokens = $durable" -c 'SELECT pg_reload_conf()' >/dev/null
	"$PG_BINDIR/pgbench" -n -c "$CLIENTS" -j 2 -T "$SECONDS_RUN" -f "$TXB_ROOT/bench/$file" 2>/dev/null |
		sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}

declare -A tps
for r in $(seq 1 "$ROUNDS"); do
	line="round $r:"
	for v in $variants; do
		t=$(run "$v")
		tps[$v]="${tps[$v]:-} $t"
		line="$line $v $t"
	done
	echo "$line"
done
records=$("$PG_BINDIR/psql" -X -At -c "SELECT format('%s records, %s covered', token_records, tokens_covered) FROM barrier_stats()")

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
base=$(echo "${tps[baseline]}" | median)
echo
echo "=== TPC-B-like + one call at the end, $CLIENTS clients, ${SECONDS_RUN}s x $ROUNDS rounds, median tps"
printf '%-12s %10s %8s\n' variant tps ratio
for v in $variants; do
	m=$(echo "${tps[$v]}" | median)
	printf '%-12s %10.0f %8.3f\n' "$v" "$m" "$(awk -v a="$m" -v b="$base" 'BEGIN { print a / b }')"
done
echo "(ratio = median tps / baseline median tps, same run; tx_barrier counters over the run: $records)"
