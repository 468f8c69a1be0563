#!/usr/bin/env bash
# tx_barrier benchmark: three comparisons in one run, each against what an
# application would do without the extension.
#
#   1. wake latency   barrier_wait() vs a 1 ms pg_xact_status() poll loop
#   2. enqueue cost   pgbench TPC-B-like + barrier_enqueue() vs
#                     + pg_current_xact_id(), durable and relaxed tokens
#   3. bulk status    barrier_wait_all() vs pg_xact_status() over finished
#                     tokens
#
# Run as root from anywhere: bench/run.sh.  It calls tools/deps.sh and
# tools/install.sh (which install nothing when everything is there), builds
# bench/wake_latency.c into a scratch directory, runs a throwaway cluster on
# a free port, prints the results and removes everything again (keep it with
# TXB_KEEP=1).  See bench/README.md for the knobs and how to read the output.
set -euo pipefail

TXB_ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$TXB_ROOT/bench
. "$TXB_ROOT/tools/cluster.sh"

# Knobs (environment).  The defaults keep a run under ~10 minutes.
WAKE_ITERS=${TXB_BENCH_WAKE_ITERS:-500}		# per round and method
WAKE_ROUNDS=${TXB_BENCH_WAKE_ROUNDS:-5}
SCALE=${TXB_BENCH_SCALE:-10}
CLIENTS=${TXB_BENCH_CLIENTS:-8}
THREADS=${TXB_BENCH_THREADS:-2}
SECONDS_N=${TXB_BENCH_SECONDS:-20}			# per pgbench run, $CLIENTS clients
ROUNDS_N=${TXB_BENCH_ROUNDS:-4}
SECONDS_1=${TXB_BENCH_SECONDS_1:-10}		# per pgbench run, 1 client
ROUNDS_1=${TXB_BENCH_ROUNDS_1:-3}
TOKENS=${TXB_BENCH_TOKENS:-100000}
BULK_RUNS=${TXB_BENCH_BULK_RUNS:-7}

"$TXB_ROOT/tools/deps.sh"
"$TXB_ROOT/tools/install.sh"

PG_CONFIG=${PG_CONFIG:-$PG_BINDIR/pg_config}
PGBENCH=$PG_BINDIR/pgbench
PSQL=$PG_BINDIR/psql

W=$(mktemp -d /tmp/txb-bench.XXXXXX)
chmod 755 "$W"
mkdir "$W/pg"
cleanup() {
	txb_cluster_stop "$W/pg"
	if [ -n "${TXB_KEEP:-}" ]; then
		echo "kept $W"
	else
		rm -rf "$W"
	fi
}
trap cleanup EXIT

cc -O2 -Wall -pthread -I"$($PG_CONFIG --includedir)" "$BENCH/wake_latency.c" \
	-L"$($PG_CONFIG --libdir)" -lpq -o "$W/wake_latency"

PORT=$(txb_free_port)
# Server settings besides PostgreSQL's defaults (fsync, synchronous_commit,
# wal_sync_method, shared_buffers... stay at their defaults):
#  - a checkpoint is forced before every pgbench run, and no timed or
#    size-triggered checkpoint may land in the middle of only some runs;
#  - no autovacuum worker runs at a random moment (pgbench vacuums its small
#    tables before each run itself), and none assigns xids during part 3.
SERVER_CONF=(
	"checkpoint_timeout = 30min"
	"max_wal_size = 8GB"
	"autovacuum = off"
)
txb_cluster_start "$W/pg" "$PORT" "${SERVER_CONF[@]}"

export PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
unset PGOPTIONS PGSERVICE PGPASSWORD 2>/dev/null || true
CONNINFO="host=127.0.0.1 port=$PORT user=postgres dbname=postgres"

. "$TXB_ROOT/bench/lib.sh"
# holds VALUE OP LIMIT  ->  yes / NO
holds() { awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
	if (v == "n/a") { print "n/a"; exit }
	ok = (op == "<=") ? (v + 0 <= l + 0) : (v + 0 >= l + 0); print ok ? "yes" : "NO" }'; }

q "CREATE EXTENSION tx_barrier"

START=$(date +%s)
echo "tx_barrier benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) CPUs, $(uname -sr), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server:  $(q 'SELECT version()' | cut -d, -f1), throwaway cluster on 127.0.0.1:$PORT, clients over TCP loopback"
echo "settings (non-default: ${SERVER_CONF[*]}; max_connections = 200, max_prepared_transactions = 20):"
q "SELECT string_agg(name || ' = ' || current_setting(name), ', ' ORDER BY name)
     FROM pg_settings
    WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method', 'full_page_writes',
                   'wal_level', 'shared_buffers', 'wal_buffers', 'commit_delay',
                   'tx_barrier.durable_tokens')" | fold -s -w 76 | sed 's/^/  /'
echo "  tx_barrier.durable_tokens = on unless a line says 'relaxed'" \
	"(then PGOPTIONS='-c tx_barrier.durable_tokens=off')"

# ---------------------------------------------------------------------------
echo
echo "== 1. Wake latency: waiter's answer - producer's COMMIT acknowledgement =="
echo "   barrier_wait(token), blocked in the lock wait (checked in pg_locks), vs"
echo "   a loop of pg_xact_status(token) sleeping 1 ms between calls"
"$W/wake_latency" "$CONNINFO" "$WAKE_ITERS" "$WAKE_ROUNDS" 1000 | tee "$W/wake.out" |
	grep -v '^RESULT'
wake=$(grep '^RESULT wake' "$W/wake.out")
wv() { echo "$wake" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
WAIT_P50=$(wv wait_p50) WAIT_P99=$(wv wait_p99) POLL_P50=$(wv poll_p50) POLL_P99=$(wv poll_p99)
WAIT_SENT_P50=$(wv wait_sent_p50) POLL_SENT_P50=$(wv poll_sent_p50)
if awk -v w="$WAIT_P50" 'BEGIN { exit !(w > 0) }'; then
	WAKE_RATIO=$(div "$POLL_P50" "$WAIT_P50" '%.1f')
else
	WAKE_RATIO="n/a"
fi
SENT_RATIO=$(div "$POLL_SENT_P50" "$WAIT_SENT_P50" '%.1f')
echo "   p50 ratio poll / barrier_wait: ${WAKE_RATIO}x from the COMMIT ack," \
	"${SENT_RATIO}x from the moment COMMIT was sent"

# ---------------------------------------------------------------------------
echo
echo "== 2. Enqueue cost: pgbench TPC-B-like + one extra statement, scale $SCALE =="
"$PGBENCH" -i -q -s "$SCALE" >"$W/pgbench-init.log" 2>&1 ||
	{ cat "$W/pgbench-init.log"; exit 1; }
q "VACUUM ANALYZE"

# variant name -> script and PGOPTIONS
declare -A SCRIPT=(
	[baseline]=tpcb_xactid.sql [durable]=tpcb_barrier.sql
	[relaxed]=tpcb_barrier.sql [durable-first]=tpcb_barrier_first.sql)
declare -A OPTS=(
	[baseline]="" [durable]="" [relaxed]="-c tx_barrier.durable_tokens=off"
	[durable-first]="")

# pgbench_run VARIANT CLIENTS THREADS SECONDS -> prints tps
pgbench_run() {
	local v=$1 log="$W/pgbench.log"
	q "CHECKPOINT"
	if ! PGOPTIONS="${OPTS[$v]}" "$PGBENCH" -c "$2" -j "$3" -T "$4" \
		-f "$BENCH/${SCRIPT[$v]}" >"$log" 2>&1; then
		cat "$log" >&2
		exit 1
	fi
	sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log"
}

# series LABEL CLIENTS THREADS SECONDS ROUNDS VARIANT...: alternating runs,
# the order rotating each round; fills TPS_<variant> with the run results.
series() {
	local label=$1 c=$2 j=$3 s=$4 rounds=$5
	shift 5
	local vs=("$@") n=$# r i v tps
	echo "   $label: $rounds rounds x $n variants x ${s} s, -c $c -j $j," \
		"alternating (order rotates each round)"
	for v in "${vs[@]}"; do
		eval "TPS_${v//-/_}=()"
	done
	for v in "${vs[@]}"; do					# warm-up, not counted
		pgbench_run "$v" "$c" "$j" 5 >/dev/null
	done
	for ((r = 0; r < rounds; r++)); do
		local line="     round $((r + 1)):"
		for ((i = 0; i < n; i++)); do
			v=${vs[$(((i + r) % n))]}
			tps=$(pgbench_run "$v" "$c" "$j" "$s")
			eval "TPS_${v//-/_}+=($tps)"
			line+=$(printf ' %s %.0f' "$v" "$tps")
		done
		echo "$line   (load $(cut -d' ' -f1 /proc/loadavg))"
	done
}

# report VARIANT...: median tps per variant and ratio to baseline
report() {
	local v base arr med
	eval "base=\$(printf '%s\n' \"\${TPS_baseline[@]}\" | median)"
	printf '     %-15s %12s %10s   %s\n' variant "median tps" "vs base" "runs"
	for v in "$@"; do
		eval "arr=(\"\${TPS_${v//-/_}[@]}\")"
		med=$(printf '%s\n' "${arr[@]}" | median)
		printf '     %-15s %12.1f %10s   %s\n' "$v" "$med" "$(div "$med" "$base" '%.3f')" \
			"$(printf '%.0f ' "${arr[@]}")"
	done
}
# ratio_of VARIANT -> median(variant) / median(baseline)
ratio_of() {
	local a b
	eval "a=\$(printf '%s\n' \"\${TPS_${1//-/_}[@]}\" | median)"
	eval "b=\$(printf '%s\n' \"\${TPS_baseline[@]}\" | median)"
	div "$a" "$b" '%.3f'
}
# paired_ratio VARIANT -> median over rounds of (variant / baseline) in the same round
paired_ratio() {
	local a b
	eval "a=(\"\${TPS_${1//-/_}[@]}\")"
	b=("${TPS_baseline[@]}")
	for i in "${!a[@]}"; do div "${a[$i]}" "${b[$i]}" '%.4f'; done | median |
		xargs printf '%.3f'
}

echo "   baseline = + SELECT pg_current_xact_id();   durable/relaxed = + SELECT barrier_enqueue();"
echo "   durable-first = barrier_enqueue() as the first statement (informational)"
series "$CLIENTS clients" "$CLIENTS" "$THREADS" "$SECONDS_N" "$ROUNDS_N" \
	baseline durable relaxed durable-first
report baseline durable relaxed durable-first
R8_DURABLE=$(ratio_of durable) R8_RELAXED=$(ratio_of relaxed)
R8_FIRST=$(ratio_of durable-first)
echo "     paired ratios (median of per-round ratios): durable $(paired_ratio durable)," \
	"relaxed $(paired_ratio relaxed), durable-first $(paired_ratio durable-first)"

series "1 client (information)" 1 1 "$SECONDS_1" "$ROUNDS_1" baseline durable relaxed
report baseline durable relaxed
R1_DURABLE=$(ratio_of durable) R1_RELAXED=$(ratio_of relaxed)

# ---------------------------------------------------------------------------
echo
echo "== 3. Bulk status: barrier_wait_all vs pg_xact_status over $TOKENS finished tokens =="
# One top-level transaction per token (COMMIT/ROLLBACK inside DO), every
# tenth rolled back; the tokens are kept in one xid8[] row.
q "CREATE TABLE bench_tokens (tokens xid8[] NOT NULL)"
q "DO \$\$
DECLARE
	toks xid8[] := '{}';
BEGIN
	FOR i IN 1..$TOKENS LOOP
		toks := toks || pg_current_xact_id();
		IF i % 10 = 0 THEN ROLLBACK; ELSE COMMIT; END IF;
	END LOOP;
	INSERT INTO bench_tokens VALUES (toks);
END \$\$"
echo "   tokens: $(q "SELECT string_agg(s || ' ' || n, ', ' ORDER BY s)
	FROM (SELECT s, count(*) n FROM bench_tokens, unnest(tokens) t, pg_xact_status(t) s GROUP BY s) x")"
same=$(q "SELECT count(*) FROM bench_tokens,
	       LATERAL (SELECT state::text s, row_number() OVER () n FROM barrier_wait_all(tokens)) b
	       JOIN LATERAL unnest(tokens) WITH ORDINALITY u(t, n) USING (n)
	      WHERE b.s IS DISTINCT FROM pg_xact_status(u.t)")
[ "$same" = 0 ] || { echo "barrier_wait_all and pg_xact_status disagree on $same tokens" >&2; exit 1; }
echo "   barrier_wait_all and pg_xact_status agree on every token"

SQL_ALL="SELECT count(*) FROM barrier_wait_all((SELECT tokens FROM bench_tokens));"
SQL_XS="SELECT count(*) FROM unnest((SELECT tokens FROM bench_tokens)) t, pg_xact_status(t);"
SQL_BS="SELECT count(*) FROM unnest((SELECT tokens FROM bench_tokens)) t, barrier_status(t);"
{
	echo '\timing on'
	for ((i = 0; i <= BULK_RUNS; i++)); do	# run 0 is a warm-up
		echo "$SQL_ALL"
		echo "$SQL_XS"
		echo "$SQL_BS"
	done
} >"$W/bulk.sql"
"$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -f "$W/bulk.sql" >"$W/bulk.out"
times=($(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' "$W/bulk.out"))
[ ${#times[@]} -eq $((3 * (BULK_RUNS + 1))) ] || { cat "$W/bulk.out" >&2; exit 1; }
col() { for ((i = 1; i <= BULK_RUNS; i++)); do echo "${times[$((3 * i + $1))]}"; done; }
B_ALL=$(col 0 | median) B_XS=$(col 1 | median) B_BS=$(col 2 | median)
echo "   median of $BULK_RUNS runs (after one warm-up), client-side time of the whole statement:"
printf '     %-22s %9.1f ms   runs: %s\n' "barrier_wait_all" "$B_ALL" "$(col 0 | xargs printf '%.0f ')"
printf '     %-22s %9.1f ms   runs: %s\n' "pg_xact_status" "$B_XS" "$(col 1 | xargs printf '%.0f ')"
printf '     %-22s %9.1f ms   runs: %s\n' "barrier_status (info)" "$B_BS" "$(col 2 | xargs printf '%.0f ')"
echo "     barrier_wait_all: $SQL_ALL"
echo "     pg_xact_status:   $SQL_XS"
echo "     barrier_status:   $SQL_BS"
BULK_RATIO=$(div "$B_ALL" "$B_XS" '%.2f')
echo "   ratio barrier_wait_all / pg_xact_status: $BULK_RATIO" \
	"(barrier_status per token / pg_xact_status: $(div "$B_BS" "$B_XS" '%.2f'))"

# ---------------------------------------------------------------------------
echo
echo "== Summary (load average at end: $(cut -d' ' -f1-3 /proc/loadavg), $(( $(date +%s) - START )) s) =="
row() { printf '  %-50s %14s %10s  %s\n' "$@"; }
row "measure" "measured" "target" "holds"
row "1. wake p50, barrier_wait (us after COMMIT ack)" "$WAIT_P50" "<= 50" "$(holds "$WAIT_P50" '<=' 50)"
row "1. wake p99, barrier_wait (us after COMMIT ack)" "$WAIT_P99" "<= 500" "$(holds "$WAIT_P99" '<=' 500)"
if [ "$WAKE_RATIO" = n/a ]; then
	row "1. p50 poll 1 ms / barrier_wait" "n/a (p50<=0)" ">= 10x" \
		"$(holds "$POLL_P50" '>=' 0) (answer precedes the ack; poll p50 $POLL_P50 us)"
else
	row "1. p50 poll 1 ms / barrier_wait" "${WAKE_RATIO}x" ">= 10x" "$(holds "$WAKE_RATIO" '>=' 10) (poll p50 $POLL_P50 us, p99 $POLL_P99 us)"
fi
row "   same, measured from COMMIT sent" "${SENT_RATIO}x" "(info)" ""
row "2. tps durable / baseline, $CLIENTS clients" "$R8_DURABLE" ">= 0.70" "$(holds "$R8_DURABLE" '>=' 0.70)"
row "2. tps relaxed / baseline, $CLIENTS clients" "$R8_RELAXED" ">= 0.95" "$(holds "$R8_RELAXED" '>=' 0.95)"
row "   tps durable-first / baseline, $CLIENTS clients" "$R8_FIRST" "(info)" ""
row "   tps durable / baseline, 1 client" "$R1_DURABLE" "(info)" ""
row "   tps relaxed / baseline, 1 client" "$R1_RELAXED" "(info)" ""
row "3. barrier_wait_all / pg_xact_status, $TOKENS" "$BULK_RATIO" "<= 3" "$(holds "$BULK_RATIO" '<=' 3)"
