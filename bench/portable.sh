#!/usr/bin/env bash
# The portable edition (portable/tx_barrier_portable.sql) beside the C
# extension, in one run on one throwaway cluster:
#
#   1. producer cost  pgbench TPC-B-like + one barrier per transaction,
#                     8 clients, against + pg_current_xact_id(), for the C
#                     edition (durable tokens, its default) and the
#                     portable one (token taken last, and first); runs
#                     alternate and the order rotates each round
#   2. wake latency   bench/wake_latency.c: the waiter's answer minus the
#                     producer's COMMIT acknowledgement, barrier_wait with
#                     and without a timeout, C and portable alternating
#
# Run as root: bench/portable.sh (about 6 minutes).  Knobs: TXB_BENCH_SECONDS
# (per pgbench run, 15), TXB_BENCH_ROUNDS (4), TXB_BENCH_WAKE_ITERS (200),
# TXB_BENCH_WAKE_ROUNDS (5), TXB_KEEP=1 keeps the scratch directory.
set -euo pipefail

TXB_ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$TXB_ROOT/bench
. "$TXB_ROOT/tools/cluster.sh"

SCALE=${TXB_BENCH_SCALE:-10}
CLIENTS=${TXB_BENCH_CLIENTS:-8}
THREADS=${TXB_BENCH_THREADS:-2}
SECS=${TXB_BENCH_SECONDS:-15}
ROUNDS=${TXB_BENCH_ROUNDS:-4}
WAKE_ITERS=${TXB_BENCH_WAKE_ITERS:-200}
WAKE_ROUNDS=${TXB_BENCH_WAKE_ROUNDS:-5}

PG_CONFIG=${PG_CONFIG:-$PG_BINDIR/pg_config}
# The C edition must be installed in this server (tools/install.sh does it).
[ -f "$("$PG_CONFIG" --sharedir)/extension/tx_barrier.control" ] ||
	"$TXB_ROOT/tools/install.sh"

W=$(mktemp -d /tmp/txb-bench-portable.XXXXXX)
chmod 755 "$W"
mkdir "$W/pg"
cleanup() {
	txb_cluster_stop "$W/pg"
	if [ -n "${TXB_KEEP:-}" ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

cc -O2 -Wall -pthread -I"$("$PG_CONFIG" --includedir)" "$BENCH/wake_latency.c" \
	-L"$("$PG_CONFIG" --libdir)" -lpq -o "$W/wake_latency"

PORT=$(txb_free_port)
# As bench/run.sh: durable defaults, no checkpoint or autovacuum mid-run.
SERVER_CONF=("checkpoint_timeout = 30min" "max_wal_size = 8GB" "autovacuum = off")
txb_cluster_start "$W/pg" "$PORT" "${SERVER_CONF[@]}"
export PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
unset PGOPTIONS PGSERVICE PGPASSWORD 2>/dev/null || true
q() { "$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
median() {
	sort -g | awk '{v[NR] = $1} END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f\n", a / b }'; }

# Database postgres: both editions (C in pg_catalog, portable in schema
# txb, called qualified) and the pgbench tables.  Database wake_p: the
# portable edition alone, on the search_path, for wake_latency's
# unqualified calls.
q -c "CREATE EXTENSION tx_barrier"
q -v schema=txb -f "$TXB_ROOT/portable/tx_barrier_portable.sql"
q -c "CREATE DATABASE wake_p"
q -d wake_p -v schema=txb -f "$TXB_ROOT/portable/tx_barrier_portable.sql"
q -c "ALTER DATABASE wake_p SET search_path = public, txb"

echo "tx_barrier portable edition vs C extension  $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) CPUs, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server:  $(q -c 'SELECT version()' | cut -d, -f1), fsync and synchronous_commit on, ${SERVER_CONF[*]}"

# ---------------------------------------------------------------------------
echo
echo "== 1. Producer cost: pgbench TPC-B-like + one statement, scale $SCALE, -c $CLIENTS -j $THREADS =="
"$PG_BINDIR/pgbench" -i -q -s "$SCALE" >"$W/init.log" 2>&1 || { cat "$W/init.log"; exit 1; }
q -c "VACUUM ANALYZE"
sed 's/SELECT barrier_enqueue();/SELECT txb.barrier_enqueue();/' "$BENCH/tpcb_barrier.sql" \
	>"$W/tpcb_portable.sql"
sed 's/SELECT barrier_enqueue();/SELECT txb.barrier_enqueue();/' "$BENCH/tpcb_barrier_first.sql" \
	>"$W/tpcb_portable_first.sql"
declare -A SCRIPT=(
	[baseline]=$BENCH/tpcb_xactid.sql [c_durable]=$BENCH/tpcb_barrier.sql
	[portable]=$W/tpcb_portable.sql [portable_first]=$W/tpcb_portable_first.sql)
VARIANTS=(baseline c_durable portable portable_first)
run() {
	q -c "CHECKPOINT"
	"$PG_BINDIR/pgbench" -c "$CLIENTS" -j "$THREADS" -T "$2" -f "${SCRIPT[$1]}" \
		>"$W/pgbench.log" 2>&1 || { cat "$W/pgbench.log" >&2; exit 1; }
	sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$W/pgbench.log"
}
for v in "${VARIANTS[@]}"; do run "$v" 5 >/dev/null; done		# warm-up
declare -A TPS
for ((r = 0; r < ROUNDS; r++)); do
	line="   round $((r + 1)):"
	for ((i = 0; i < ${#VARIANTS[@]}; i++)); do
		v=${VARIANTS[$(((i + r) % ${#VARIANTS[@]}))]}
		t=$(run "$v" "$SECS")
		TPS[$v,$r]=$t
		line+=$(printf ' %s %.0f' "$v" "$t")
	done
	echo "$line   (load $(cut -d' ' -f1 /proc/loadavg))"
done
printf '   %-16s %10s %9s %14s\n' variant "median tps" "vs base" "paired ratio"
for v in "${VARIANTS[@]}"; do
	med=$(for ((r = 0; r < ROUNDS; r++)); do echo "${TPS[$v,$r]}"; done | median)
	base=$(for ((r = 0; r < ROUNDS; r++)); do echo "${TPS[baseline,$r]}"; done | median)
	paired=$(for ((r = 0; r < ROUNDS; r++)); do div "${TPS[$v,$r]}" "${TPS[baseline,$r]}"; done | median)
	printf '   %-16s %10.0f %9s %14s\n' "$v" "$med" "$(div "$med" "$base")" "$paired"
done
echo "   markers: $(q -c "SELECT count(*) FROM txb.barrier_marker") rows," \
	"$(q -c "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c
		WHERE c.relnamespace = 'txb'::regnamespace AND c.relname LIKE 'barrier_marker_%' AND c.relkind = 'r'")"

# ---------------------------------------------------------------------------
echo
echo "== 2. Wake latency: waiter's answer - producer's COMMIT ack (us), $WAKE_ROUNDS x $WAKE_ITERS per variant, alternating =="
declare -A P50 P99
WAKES=(c c_timeout portable portable_timeout)
wake() {
	local db=postgres wait="SELECT barrier_wait(\$1::xid8)"
	case $1 in *portable*) db=wake_p ;; esac
	case $1 in *timeout) wait="SELECT barrier_wait(\$1::xid8, '10s')" ;; esac
	# the poll column is not reported here; poll the edition's own status
	TXB_WAKE_WAIT_SQL=$wait TXB_WAKE_POLL_SQL="SELECT barrier_status(\$1::xid8)" \
		"$W/wake_latency" "host=127.0.0.1 port=$PORT user=postgres dbname=$db" \
		"$WAKE_ITERS" 1 1000 | sed -n 's/^RESULT wake //p'
}
for ((r = 0; r < WAKE_ROUNDS; r++)); do
	line="   round $((r + 1)):"
	for v in "${WAKES[@]}"; do
		res=$(wake "$v")
		P50[$v,$r]=$(echo "$res" | tr ' ' '\n' | sed -n 's/^wait_p50=//p')
		P99[$v,$r]=$(echo "$res" | tr ' ' '\n' | sed -n 's/^wait_p99=//p')
		line+=" $v ${P50[$v,$r]}"
	done
	echo "$line"
done
printf '   %-18s %12s %12s\n' variant "median p50" "median p99"
for v in "${WAKES[@]}"; do
	printf '   %-18s %12s %12s\n' "$v" \
		"$(for ((r = 0; r < WAKE_ROUNDS; r++)); do echo "${P50[$v,$r]}"; done | median)" \
		"$(for ((r = 0; r < WAKE_ROUNDS; r++)); do echo "${P99[$v,$r]}"; done | median)"
done
