#!/usr/bin/env bash
# Many pending waits on few connections: barrier_wait_any() (the C
# library's txb_waiter) against one backend per wait (barrier_wait()), and
# barrier_wait_all() over 1,000,000 finished tokens against
# pg_xact_status(), all in one run on one throwaway server:
#
#   1. wait_any_bench (wait_any_bench.c): PENDING waits pending on CONNS
#      connections while RATE transactions per second commit, each COMMIT
#      sent LEAD ms after its token was handed to the waiting side; then
#      the same stream with one backend per wait (BG_SINGLE background
#      waits, each a backend of its own: max_connections keeps it far below
#      PENDING).  Latency from each COMMIT acknowledgement to its waiter
#      learning of it, memory per waiting backend, CPU of the waiting
#      backends.  Then, for information, the wait_any phase once more with
#      a lead of LEAD_LONG ms (every token already in the sleeping
#      statement before its COMMIT), and once with a tenth of the pending
#      waits.
#   2. TOKENS top-level transactions (every tenth rolled back), then
#      barrier_wait_all(tokens) and pg_xact_status() per element timed
#      alternately, RUNS times each after a warm-up.
#
# Prints RESULT lines and a summary with every figure beside its baseline.
# Run as root: bench/wait_any/run.sh (about three minutes on 2 cores).
# Knobs (environment, defaults in brackets): TXB_WA_PENDING [10000],
# TXB_WA_CONNS [8], TXB_WA_SINGLE [200], TXB_WA_RATE [1000],
# TXB_WA_SECONDS [10], TXB_WA_LEAD_MS [20], TXB_WA_LEAD_LONG_MS [200],
# TXB_WA_TOKENS [1000000], TXB_WA_RUNS [5], TXB_KEEP=1 keeps the scratch
# directory, TXB_NO_INSTALL=1 uses the installed extension as it is.
set -euo pipefail

TXB_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$TXB_ROOT/tools/cluster.sh"
PSQL=$PG_BINDIR/psql
. "$TXB_ROOT/bench/lib.sh"

PENDING=${TXB_WA_PENDING:-10000}
CONNS=${TXB_WA_CONNS:-8}
SINGLE=${TXB_WA_SINGLE:-200}
RATE=${TXB_WA_RATE:-1000}
SECS=${TXB_WA_SECONDS:-10}
LEAD=${TXB_WA_LEAD_MS:-20}
LEAD_LONG=${TXB_WA_LEAD_LONG_MS:-200}
TOKENS=${TXB_WA_TOKENS:-1000000}
RUNS=${TXB_WA_RUNS:-5}
POOL=64
PRODUCERS=32

bench_require_root "the server runs as 'postgres'; /proc of its backends is read"
bench_install

# Stopped and removed at exit (kept with TXB_KEEP=1).
txb_scratch WORK wait-any
trap 'exit 130' INT TERM
START=$(date +%s)

# The library is compiled into the program: nothing is written to the tree.
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror \
	-I"$TXB_ROOT/bench" -I"$TXB_ROOT/client" -I"$("$PG_CONFIG" --includedir)" \
	"$TXB_ROOT/bench/wait_any/wait_any_bench.c" "$TXB_ROOT/client/tx_barrier.c" \
	-L"$("$PG_CONFIG" --libdir)" -lpq -pthread -o "$WORK/wait_any_bench"

ulimit -n $((4 * (SINGLE + POOL + PENDING / 64 + PRODUCERS) + 200))
max_conn=$((SINGLE + POOL + PENDING / 64 + PRODUCERS + 60))
mkdir -p "$WORK/pg"
port=$(txb_free_port)
# synchronous_commit = off: the producers' commit rate is not what is
# measured, and a rotational disk would not sustain it with a flush each.
txb_cluster_start "$WORK/pg" "$port" \
	"max_connections = $max_conn" \
	"shared_preload_libraries = 'tx_barrier'" \
	"tx_barrier.max_wait_any_tokens = $((2 * PENDING))" \
	"synchronous_commit = off" \
	"checkpoint_timeout = 30min" "max_wal_size = 8GB" "autovacuum = off"
export PGHOST=$WORK/pg PGPORT=$port PGDATABASE=postgres PGUSER=postgres
conn="host=$WORK/pg port=$port dbname=postgres user=postgres"
q "CREATE EXTENSION tx_barrier"

echo "tx_barrier wait_any benchmark: $(nproc) CPUs, $(q 'SHOW server_version'), load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
echo "settings: max_connections = $max_conn, tx_barrier.max_wait_any_tokens = $((2 * PENDING)), synchronous_commit = off"

# ---------------------------------------------------------------------------
echo
echo "== 1. $PENDING pending waits on $CONNS connections vs one backend per wait, $RATE commits/s =="
"$WORK/wait_any_bench" -d "$conn" -n "$PENDING" -c "$CONNS" -b "$SINGLE" \
	-r "$RATE" -s "$SECS" -l "$LEAD" -p "$PRODUCERS" -w "$POOL" -m both \
	| tee "$WORK/wait.results"
"$WORK/wait_any_bench" -d "$conn" -n "$PENDING" -c "$CONNS" -r "$RATE" \
	-s "$SECS" -l "$LEAD_LONG" -p $((PRODUCERS * 8)) -m wait_any \
	| sed 's/^RESULT mode=wait_any /RESULT mode=wait_any_long_lead /' \
	| grep -v 'mode=idle' | tee -a "$WORK/wait.results"
FEW=$((PENDING / 10))
"$WORK/wait_any_bench" -d "$conn" -n "$FEW" -c "$CONNS" -r "$RATE" \
	-s "$SECS" -l "$LEAD" -p "$PRODUCERS" -m wait_any \
	| sed 's/^RESULT mode=wait_any /RESULT mode=wait_any_few /' \
	| grep -v 'mode=idle' | tee -a "$WORK/wait.results"

field() {	# MODE FIELD
	grep "^RESULT mode=$1 " "$WORK/wait.results" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# ---------------------------------------------------------------------------
echo
echo "== 2. barrier_wait_all vs pg_xact_status over $TOKENS finished tokens =="
# One top-level transaction per token, every tenth rolled back; nothing
# else takes xids on this server meanwhile, so the tokens are every xid
# from the first to the last.
q "CREATE TABLE bench_tokens (tokens xid8[] NOT NULL)"
t_gen=$(date +%s)
q "CREATE TABLE bench_range (first xid8, last xid8)"
q "DO \$\$
DECLARE
	v_first xid8;
	v_cur xid8;
BEGIN
	FOR i IN 1..$TOKENS LOOP
		v_cur := pg_current_xact_id();
		IF i = 1 THEN v_first := v_cur; END IF;
		IF i % 10 = 0 THEN ROLLBACK; ELSE COMMIT; END IF;
	END LOOP;
	INSERT INTO bench_range VALUES (v_first, v_cur);
END \$\$"
q "INSERT INTO bench_tokens SELECT array_agg(x::text::xid8 ORDER BY x)
	FROM bench_range, generate_series(first::text::bigint, last::text::bigint) x"
echo "   $(q "SELECT cardinality(tokens) FROM bench_tokens") tokens made in $(( $(date +%s) - t_gen )) s:" \
	"$(q "SELECT string_agg(s || ' ' || n, ', ' ORDER BY s)
	FROM (SELECT s, count(*) n FROM bench_tokens, unnest(tokens) t, pg_xact_status(t) s GROUP BY s) x")"
SQL_ALL="SELECT count(*) FROM barrier_wait_all((SELECT tokens FROM bench_tokens));"
SQL_XS="SELECT count(*) FROM unnest((SELECT tokens FROM bench_tokens)) t, pg_xact_status(t);"
{
	printf '%s\n' '\timing on'
	for ((i = 0; i <= RUNS; i++)); do	# run 0 is a warm-up
		echo "$SQL_ALL"
		echo "$SQL_XS"
	done
} >"$WORK/bulk.sql"
"$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -f "$WORK/bulk.sql" >"$WORK/bulk.out"
mapfile -t times < <(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' "$WORK/bulk.out")
[ ${#times[@]} -eq $((2 * (RUNS + 1))) ] || { cat "$WORK/bulk.out" >&2; exit 1; }
col() { for ((i = 1; i <= RUNS; i++)); do echo "${times[$((2 * i + $1))]}"; done; }
B_ALL=$(col 0 | median) B_XS=$(col 1 | median)
printf '   %-16s median %9.1f ms   runs: %s\n' "barrier_wait_all" "$B_ALL" "$(col 0 | xargs printf '%.0f ')"
printf '   %-16s median %9.1f ms   runs: %s\n' "pg_xact_status" "$B_XS" "$(col 1 | xargs printf '%.0f ')"
echo "RESULT bulk tokens=$TOKENS wait_all_ms=$B_ALL xact_status_ms=$B_XS ratio=$(div "$B_ALL" "$B_XS")"

# ---------------------------------------------------------------------------
echo
echo "== Summary (load average at end: $(cut -d' ' -f1-3 /proc/loadavg), $(( $(date +%s) - START )) s) =="
row() { printf '  %-44s %18s %18s\n' "$@"; }
row "" "barrier_wait_any" "one backend/wait"
row "waiting connections" "$(field wait_any conns)" "$(field per_backend conns)"
row "waits pending before the stream" "$(field wait_any pending)" "$(field per_backend pending)"
row "commits/s reached (target $RATE)" "$(field wait_any rate)" "$(field per_backend rate)"
row "latency p50 (us after COMMIT ack)" "$(field wait_any p50)" "$(field per_backend p50)"
row "latency p90" "$(field wait_any p90)" "$(field per_backend p90)"
row "latency p99" "$(field wait_any p99)" "$(field per_backend p99)"
row "latency max" "$(field wait_any max)" "$(field per_backend max)"
row "memory per waiting backend, private kB" "$(field wait_any private_kb)" "$(field per_backend private_kb)"
row "memory per waiting backend, PSS kB" "$(field wait_any pss_kb)" "$(field per_backend pss_kb)"
row "CPU of the waiting backends (cores)" "$(field wait_any cpu_cores)" "$(field per_backend cpu_cores)"
row "statements cancelled to take tokens in" "$(field wait_any cancels)" "-"
row "wrong or missing answers" "$(field wait_any wrong)" "$(field per_backend wrong)"
echo "  idle backend, for reference: private $(field idle private_kb) kB, PSS $(field idle pss_kb) kB"
echo "  barrier_wait_any with a ${LEAD_LONG} ms lead: p50 $(field wait_any_long_lead p50), p99 $(field wait_any_long_lead p99) us, $(field wait_any_long_lead rate) commits/s, wrong $(field wait_any_long_lead wrong)"
echo "  barrier_wait_any with $FEW pending waits (not $PENDING): p50 $(field wait_any_few p50), p99 $(field wait_any_few p99) us, $(field wait_any_few rate) commits/s, CPU $(field wait_any_few cpu_cores) cores, wrong $(field wait_any_few wrong)"
echo "  barrier_wait_all / pg_xact_status over $TOKENS tokens: $B_ALL / $B_XS ms = $(div "$B_ALL" "$B_XS")"
[ "$(field wait_any wrong)" = 0 ] && [ "$(field per_backend wrong)" = 0 ] &&
	[ "$(field wait_any_long_lead wrong)" = 0 ] && [ "$(field wait_any_few wrong)" = 0 ]
