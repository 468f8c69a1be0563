#!/usr/bin/env bash
# tx_barrier against what applications use today, on one machine in one run,
# written up as docs/benchmarks.md with its plots (docs/benchmarks/*.png):
#
#   1. wake latency after the producer's COMMIT / ROLLBACK acknowledgement:
#      barrier_wait, a pg_xact_status poll at 1 ms and at 10 ms, the marker
#      row retried every 100 ms, LISTEN/NOTIFY (bench/wake_latency.c)
#   2. producer cost: pgbench TPC-B-like plus one statement, at 1, 8 and 32
#      clients: pg_current_xact_id() (baseline), barrier_enqueue() late and
#      early in the transaction with durable tokens on and off, the marker
#      row insert; the variants alternate within every round
#
# Run as root: bench/compare.sh (or make bench), about 10 minutes.  It
# installs its Debian packages (tools/deps.sh, gnuplot-nox) and the
# extension (tools/install.sh) unless TXB_BENCH_NO_INSTALL=1, runs a
# throwaway cluster on a free port and removes it at the end.
# TXB_BENCH_SMOKE=1 runs a few rounds of each (about a minute) and writes
# into TXB_BENCH_OUT (default: docs/ of this checkout; the smoke test layer
# points it at a scratch directory).
set -euo pipefail

TXB_ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$TXB_ROOT/bench
. "$TXB_ROOT/tools/cluster.sh"

SMOKE=${TXB_BENCH_SMOKE:-0}
if [ "$SMOKE" = 1 ]; then
	WAKE_ITERS=${TXB_BENCH_WAKE_ITERS:-10} WAKE_ROUNDS=${TXB_BENCH_WAKE_ROUNDS:-2}
	CLIENT_COUNTS=${TXB_BENCH_CLIENT_COUNTS:-"1 8 32"}
	SECONDS_N=${TXB_BENCH_SECONDS:-1} ROUNDS_N=${TXB_BENCH_ROUNDS:-1}
	# A smoke run counts transactions, not seconds: on a busy machine 32
	# clients can spend a whole second connecting and commit nothing.
	SMOKE_TRANSACTIONS=${TXB_BENCH_TRANSACTIONS:-20}
else
	WAKE_ITERS=${TXB_BENCH_WAKE_ITERS:-100} WAKE_ROUNDS=${TXB_BENCH_WAKE_ROUNDS:-4}
	CLIENT_COUNTS=${TXB_BENCH_CLIENT_COUNTS:-"1 8 32"}
	SECONDS_N=${TXB_BENCH_SECONDS:-6} ROUNDS_N=${TXB_BENCH_ROUNDS:-3}
fi
SCALE=${TXB_BENCH_SCALE:-10}
OUT=${TXB_BENCH_OUT:-$TXB_ROOT/docs}
WAKE_COMMIT_METHODS=wait,poll,poll10,marker,notify
WAKE_ABORT_METHODS=wait,poll,poll10
VARIANTS=(baseline late-durable late-reservation late-relaxed early-durable early-reservation early-relaxed marker)

if [ "${TXB_BENCH_NO_INSTALL:-0}" != 1 ]; then
	"$TXB_ROOT/tools/deps.sh"
	command -v gnuplot >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >/dev/null
	"$TXB_ROOT/tools/install.sh"
fi
command -v gnuplot >/dev/null || { echo "compare.sh: gnuplot is missing (apt-get install gnuplot-nox)" >&2; exit 1; }
PSQL=$PG_BINDIR/psql
PGBENCH=$PG_BINDIR/pgbench

txb_scratch W bench
cc -O2 -Wall -pthread -I"$("$PG_CONFIG" --includedir)" "$BENCH/wake_latency.c" \
	-L"$("$PG_CONFIG" --libdir)" -lpq -o "$W/wake_latency"
mkdir "$W/pg"
# As bench/run.sh: no timed checkpoint or autovacuum lands in only some runs.
SERVER_CONF=("checkpoint_timeout = 30min" "max_wal_size = 8GB" "autovacuum = off"
	"shared_preload_libraries = 'tx_barrier'")
txb_cluster_start_free "$W/pg" PORT "${SERVER_CONF[@]}"
export PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
unset PGOPTIONS PGSERVICE PGPASSWORD 2>/dev/null || true
CONNINFO="host=127.0.0.1 port=$PORT user=postgres dbname=postgres"
. "$TXB_ROOT/bench/lib.sh"

q "CREATE EXTENSION tx_barrier"
START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$OUT/benchmarks"

# ---------------------------------------------------------------- 1. wake
echo "== 1. wake latency ($WAKE_ROUNDS rounds x $WAKE_ITERS iterations per method, interleaved)"
: >"$W/raw.txt"
TXB_WAKE_METHODS=$WAKE_COMMIT_METHODS TXB_WAKE_RAW=$W/raw.txt \
	"$W/wake_latency" "$CONNINFO" "$WAKE_ITERS" "$WAKE_ROUNDS" 1000 >"$W/wake-commit.out"
TXB_WAKE_METHODS=$WAKE_ABORT_METHODS TXB_WAKE_ABORT=1 TXB_WAKE_RAW=$W/raw.txt \
	"$W/wake_latency" "$CONNINFO" "$WAKE_ITERS" "$WAKE_ROUNDS" 1000 >"$W/wake-abort.out"
grep -h '^RESULT method=' "$W/wake-commit.out" "$W/wake-abort.out" >"$W/wake.results"
cat "$W/wake.results"
# wres METHOD OUTCOME FIELD
wres() {
	awk -v m="method=$1" -v o="outcome=$2" -v f="$3" '$2 == m && $3 == o {
		for (i = 4; i <= NF; i++) if (index($i, f "=") == 1) print substr($i, length(f) + 2) }' "$W/wake.results"
}

# ---------------------------------------------------------------- 2. cost
echo "== 2. producer cost (pgbench TPC-B-like, scale $SCALE, $ROUNDS_N rounds x ${SECONDS_N} s)"
"$PGBENCH" -i -q -s "$SCALE" >"$W/pgbench-init.log" 2>&1 || { cat "$W/pgbench-init.log"; exit 1; }
q "VACUUM ANALYZE"
declare -A SCRIPT=([baseline]=tpcb_xactid.sql [late-durable]=tpcb_barrier.sql
	[late-reservation]=tpcb_barrier.sql [late-relaxed]=tpcb_barrier.sql
	[early-durable]=tpcb_barrier_first.sql [early-reservation]=tpcb_barrier_first.sql
	[early-relaxed]=tpcb_barrier_first.sql [marker]=tpcb_marker.sql)
# tx_barrier.token_reservation is a server-wide setting (reload), not a
# session's: set before each run.
declare -A RESERVATION=([late-reservation]=on [early-reservation]=on)
declare -A OPTS=([baseline]="" [late-durable]="" [late-reservation]="" [early-reservation]=""
	[late-relaxed]="-c tx_barrier.durable_tokens=off"
	[early-durable]="" [early-relaxed]="-c tx_barrier.durable_tokens=off" [marker]="")
pgbench_run() {		# VARIANT CLIENTS SECONDS -> tps
	local log=$W/pgbench.log j=$(($2 < 2 ? 1 : 2)) length=(-T "$3")
	[ "$SMOKE" = 1 ] && length=(-t "$SMOKE_TRANSACTIONS")
	q "ALTER SYSTEM SET tx_barrier.token_reservation = ${RESERVATION[$1]:-off}"
	q "SELECT pg_reload_conf()" >/dev/null
	q "CHECKPOINT"
	PGOPTIONS="${OPTS[$1]}" "$PGBENCH" -c "$2" -j "$j" "${length[@]}" -f "$BENCH/${SCRIPT[$1]}" \
		>"$log" 2>&1 || { cat "$log" >&2; exit 1; }
	sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log"
}
: >"$W/tps.txt"		# clients variant round tps
for v in "${VARIANTS[@]}"; do			# warm-up, not counted
	pgbench_run "$v" 8 1 >/dev/null
done
n=${#VARIANTS[@]}
for c in $CLIENT_COUNTS; do
	for ((r = 0; r < ROUNDS_N; r++)); do
		line="   $c clients, round $((r + 1)):"
		for ((i = 0; i < n; i++)); do
			v=${VARIANTS[$(((i + r) % n))]}
			tps=$(pgbench_run "$v" "$c" "$SECONDS_N")
			echo "$c $v $r $tps" >>"$W/tps.txt"
			line+=$(printf ' %s %.0f' "$v" "$tps")
		done
		echo "$line   (load $(cut -d' ' -f1 /proc/loadavg))"
	done
done
tps_of() { awk -v c="$1" -v v="$2" '$1 == c && $2 == v { print $4 }' "$W/tps.txt"; }
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(($(date +%s) - START))

# ---------------------------------------------------------------- plots
declare -A LABEL=([wait]="barrier_wait (SQL)" [poll]="pg_xact_status poll, 1 ms"
	[poll10]="pg_xact_status poll, 10 ms" [marker]="marker row, retry every 100 ms"
	[notify]="LISTEN/NOTIFY")
for outcome in commit abort; do
	plot=""
	for m in wait poll poll10 marker notify; do
		awk -v m="$m" -v o="$outcome" '$1 == m && $2 == o { v = $3 / 1000; if (v < 0.001) v = 0.001; print v }' \
			"$W/raw.txt" | sort -g | awk '{ v[NR] = $1 } END { for (i = 1; i <= NR; i++) print v[i], i / NR }' \
			>"$W/cdf-$outcome-$m.dat"
		[ -s "$W/cdf-$outcome-$m.dat" ] && plot+="${plot:+, }'$W/cdf-$outcome-$m.dat' using 1:2 with steps lw 2 title '${LABEL[$m]}'"
	done
	gnuplot <<EOF
set terminal pngcairo size 900,500 noenhanced font ",10"
set output '$OUT/benchmarks/wake-$outcome.png'
set title "Wake latency after the producer's ${outcome^^} acknowledgement (CDF)"
set xlabel 'ms after the acknowledgement (log scale; values <= 1 us drawn at 1 us)'
set ylabel 'fraction of wake-ups'
set logscale x
set xrange [0.001:*]
set yrange [0:1]
set grid
set key bottom right
plot $plot
EOF
done
{
	printf 'variant'
	for c in $CLIENT_COUNTS; do printf '\t%s' "$c clients"; done
	echo
	for v in "${VARIANTS[@]}"; do
		printf '%s' "$v"
		for c in $CLIENT_COUNTS; do
			printf '\t%s' "$(div "$(tps_of "$c" "$v" | median)" "$(tps_of "$c" baseline | median)" '%.3f')"
		done
		echo
	done
} >"$W/ratios.dat"
ncol=$(($(echo $CLIENT_COUNTS | wc -w) + 1))
gnuplot <<EOF
set terminal pngcairo size 900,500 noenhanced font ",10"
set output '$OUT/benchmarks/producer-cost.png'
set datafile separator '\t'
set title 'Producer throughput, TPC-B-like + one statement: median tps / baseline median tps'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set yrange [0:*]
set ylabel 'ratio to pg_current_xact_id() baseline'
set grid y
set key top right
set xtics rotate by -20
plot for [col=2:$ncol] '$W/ratios.dat' using col:xtic(1) title columnheader
EOF

# ---------------------------------------------------------------- report
us() { awk -v v="$1" 'BEGIN { if (v == "") print "?"; else printf "%.0f\n", v }'; }
DISK_DEV=$(df --output=source "$W" | tail -1)
DISK=$( (lsblk -dno NAME,SIZE,ROTA "$DISK_DEV" 2>/dev/null || true) |
	awk '{ printf "%s, %s, %s", $1, $2, ($3 == 1 ? "rotational" : "non-rotational") }')
{
	echo "# Benchmarks: tx_barrier against what applications use today"
	echo
	echo "Generated by \`bench/compare.sh\` (\`make bench\`) on $(date -u '+%Y-%m-%d %H:%M UTC')$([ "$SMOKE" = 1 ] && echo ' in SMOKE mode (a few rounds; the figures mean little)')."
	echo "Every figure below comes from this one run on this one machine; compare"
	echo "the rows of a table with each other, not with another machine."
	echo
	echo "## Machine"
	echo
	echo "| | |"
	echo "|---|---|"
	echo "| CPUs (nproc) | $(nproc) ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)) |"
	echo "| memory | $(free -g | awk '/^Mem:/ { print $2 " GiB" }') |"
	echo "| kernel | $(uname -sr) |"
	echo "| PostgreSQL | $(q 'SELECT version()' | cut -d, -f1), a throwaway cluster, clients over TCP to 127.0.0.1 |"
	echo "| disk of the data directory | ${DISK:-$DISK_DEV} ($(df -T "$W" | awk 'NR == 2 { print $2 }')) |"
	echo "| load average (1, 5, 15 min) | at start $LOAD_START, at end $LOAD_END |"
	echo "| duration | $ELAPSED s |"
	echo
	echo "The machine was shared with other work during the run (builds and tests"
	echo "of other people; see the load average): tails (p99, max) and single"
	echo "pgbench rounds are noisy, medians less so."
	echo
	echo "Server settings: PostgreSQL's defaults (\`fsync = on\`, \`synchronous_commit = on\`,"
	echo "\`shared_buffers = 128MB\`, ...) except: ${SERVER_CONF[*]/%/;} \`max_connections = 200\`."
	echo
	echo "## 1. Wake latency"
	echo
	echo "How soon a worker learns that the producer's transaction ended, measured"
	echo "from the moment the producer's COMMIT (or ROLLBACK) acknowledgement arrived,"
	echo "in µs; $((WAKE_ITERS * WAKE_ROUNDS)) wake-ups per method and outcome ($WAKE_ROUNDS rounds"
	echo "× $WAKE_ITERS), the methods interleaved iteration by iteration. The producer"
	echo "ends its transaction at a random phase of the poll cycle. A negative figure"
	echo "means the worker's answer arrived before the producer's own acknowledgement"
	echo "(the server wakes lock waiters before it replies to the committer)."
	echo
	echo "| mechanism | outcome | p50 | p90 | p99 | max | spread of round p50s |"
	echo "|---|---|---|---|---|---|---|"
	for outcome in commit abort; do
		for m in wait poll poll10 marker notify; do
			p50=$(wres "$m" "$outcome" p50)
			if [ -z "$p50" ]; then
				echo "| ${LABEL[$m]} | $outcome | cannot tell | — | — | — | — |"
				continue
			fi
			echo "| ${LABEL[$m]} | $outcome | $(us "$p50") | $(us "$(wres "$m" "$outcome" p90)") | $(us "$(wres "$m" "$outcome" p99)") | $(us "$(wres "$m" "$outcome" max)") | $(us "$(wres "$m" "$outcome" round_p50_min)") – $(us "$(wres "$m" "$outcome" round_p50_max)") |"
		done
	done
	echo
	echo "\"cannot tell\": the marker row of an aborted transaction never appears, so"
	echo "its worker retries until it gives up (it never learns of the abort);"
	echo "LISTEN/NOTIFY delivers nothing on abort. Only \`barrier_wait\` and"
	echo "\`pg_xact_status\` report an abort."
	echo
	echo "The original library retries the marker lookup every 10 s. A retry loop's"
	echo "latency scales with its period (the worker looks at a uniformly random"
	echo "phase of the period), as the 1 ms, 10 ms and 100 ms rows show: at 10 s"
	echo "expect a median of about 5 s and a maximum of about 10 s. It was not"
	echo "measured, to keep the run short."
	echo
	echo "![wake latency after COMMIT](benchmarks/wake-commit.png)"
	echo "![wake latency after ROLLBACK](benchmarks/wake-abort.png)"
	echo
	echo "## 2. Producer cost"
	echo
	echo "pgbench's built-in TPC-B-like transaction plus one statement, scale $SCALE,"
	echo "$ROUNDS_N rounds of ${SECONDS_N} s per variant and client count; within a round the"
	echo "variants alternate (the order rotates each round), with a \`CHECKPOINT\`"
	echo "before every run. Median tps over the rounds, its ratio to the baseline's"
	echo "median, and the spread of the rounds ((max − min) / median)."
	echo
	echo "| variant | extra statement |"
	echo "|---|---|"
	echo "| baseline | \`SELECT pg_current_xact_id();\` before \`END\` (same round trips, no barrier) |"
	echo "| late-durable | \`SELECT barrier_enqueue();\` before \`END\` (default \`tx_barrier.durable_tokens = on\`) |"
	echo "| late-reservation | the same with \`tx_barrier.token_reservation = on\` (one record per reserved range) |"
	echo "| late-relaxed | the same with \`tx_barrier.durable_tokens = off\` |"
	echo "| early-durable | \`SELECT barrier_enqueue();\` first after \`BEGIN\`, before any row lock |"
	echo "| early-reservation | the same with \`tx_barrier.token_reservation = on\` |"
	echo "| early-relaxed | the same with \`tx_barrier.durable_tokens = off\` |"
	echo "| marker | \`INSERT INTO txb_bench_marker VALUES (pg_current_xact_id());\` (the original library's marker row, one primary-key index) |"
	echo
	printf '| variant |'
	for c in $CLIENT_COUNTS; do printf ' %s clients: tps | ratio | spread |' "$c"; done
	echo
	printf '|---|'
	for c in $CLIENT_COUNTS; do printf -- '---|---|---|'; done
	echo
	for v in "${VARIANTS[@]}"; do
		printf '| %s |' "$v"
		for c in $CLIENT_COUNTS; do
			med=$(tps_of "$c" "$v" | median)
			spread=$(tps_of "$c" "$v" | sort -g | awk -v m="$med" '{ v[NR] = $1 } END { printf "%.0f %%", 100 * (v[NR] - v[1]) / m }')
			printf ' %.0f | %s | %s |' "$med" "$(div "$med" "$(tps_of "$c" baseline | median)" '%.3f')" "$spread"
		done
		echo
	done
	echo
	echo "![producer cost](benchmarks/producer-cost.png)"
	echo
	echo "## Commands"
	echo
	echo '```sh'
	echo "bench/compare.sh        # or: make bench   (as root; TXB_BENCH_SMOKE=1 for a quick check)"
	echo "TXB_WAKE_METHODS=$WAKE_COMMIT_METHODS wake_latency '$CONNINFO' $WAKE_ITERS $WAKE_ROUNDS 1000"
	echo "TXB_WAKE_METHODS=$WAKE_ABORT_METHODS TXB_WAKE_ABORT=1 wake_latency '$CONNINFO' $WAKE_ITERS $WAKE_ROUNDS 1000"
	echo "pgbench -i -q -s $SCALE"
	for v in "${VARIANTS[@]}"; do
		echo "${OPTS[$v]:+PGOPTIONS='${OPTS[$v]}' }pgbench -c CLIENTS -j min(CLIENTS,2) -T $SECONDS_N -f bench/${SCRIPT[$v]}   # $v, CLIENTS in $CLIENT_COUNTS"
	done
	echo '```'
	echo
	echo "Every pgbench round, in run order (clients variant round tps):"
	echo
	echo '```'
	cat "$W/tps.txt"
	echo '```'
	# The measured results of bench/wait_any/run.sh, a run of its own.
	if [ -f "$TXB_ROOT/bench/wait_any/results.md" ]; then
		echo
		cat "$TXB_ROOT/bench/wait_any/results.md"
	fi
} >"$OUT/benchmarks.md"
cp "$W/wake.results" "$OUT/benchmarks/wake.results"
cp "$W/tps.txt" "$OUT/benchmarks/tps.txt"
echo "wrote $OUT/benchmarks.md and $OUT/benchmarks/ ($ELAPSED s)"
