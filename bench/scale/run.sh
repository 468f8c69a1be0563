#!/usr/bin/env bash
# tx_barrier at scale: 1,000 sessions blocked in barrier_wait(), answered by
# one burst of commits.  Three runs against throwaway servers:
#
#   A. primary only       N producers and N waiters on one primary
#   B. spread             N producers on the primary, the N waiters split
#                         between the primary and a streaming hot standby
#   C. standby only       N producers on the primary, N waiters on the standby
#
# Each run prints the time until the last waiter answered after the burst
# began, per-waiter latency percentiles (answer minus its own producer's
# COMMIT acknowledgement), memory per waiting backend (/proc smaps_rollup:
# RSS, PSS, private) idle and while waiting, the CPU the waiting backends
# burn while they wait, and a correctness count (every 10th producer rolls
# back; every answer is checked).  Exit status 1 if any answer was wrong or
# missing.
#
# Run as root: bench/scale/run.sh.  Knobs (environment):
#   TXB_SCALE_WAITERS   waiters (and producers) per run, default 1000
#   TXB_SCALE_RUNS      which runs, default "A B"; C (all waiters on the
#                       standby) takes several minutes on 2 cores
#   TXB_KEEP=1          keep the scratch directory and its server logs
#   TXB_NO_INSTALL=1    use the installed extension as it is (no rebuild)
# Takes about two minutes on a 2-core machine; everything it starts is
# stopped and removed at the end (also on failure or Ctrl-C).
set -euo pipefail

TXB_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$TXB_ROOT/tools/cluster.sh"

N=${TXB_SCALE_WAITERS:-1000}
RUNS=${TXB_SCALE_RUNS:-A B}
PSQL=$PG_BINDIR/psql
PG_CONFIG=${PG_CONFIG:-$PG_BINDIR/pg_config}
. "$TXB_ROOT/bench/lib.sh"

bench_require_root "the servers run as 'postgres'; /proc of their backends is read"
bench_install

# Its servers are stopped and it is removed at exit (kept with TXB_KEEP=1).
txb_scratch WORK scale
trap 'exit 130' INT TERM

cc -O2 -Wall -I"$TXB_ROOT/bench" -I"$("$PG_CONFIG" --includedir)" \
	"$TXB_ROOT/bench/scale/scale_waiters.c" \
	-L"$("$PG_CONFIG" --libdir)" -lpq -o "$WORK/scale_waiters"

# One socket per connection on the client side.
ulimit -n $((4 * N + 100))

max_conn=$((2 * N + 50))
mkdir -p "$WORK/primary"
pport=$(txb_free_port)
txb_cluster_start "$WORK/primary" "$pport" \
	"max_connections = $max_conn" \
	"shared_preload_libraries = 'tx_barrier'" \
	"wal_level = replica" \
	"max_wal_senders = 4" \
	"hot_standby = on" \
	"track_commit_timestamp = on"
primary="host=$WORK/primary port=$pport dbname=postgres user=postgres"
"$PSQL" -XAtq -d "$primary" -c \
	"CREATE EXTENSION tx_barrier; CREATE TABLE scale_jobs (id int)"

standby=""
if [[ "$RUNS" == *B* || "$RUNS" == *C* ]]; then
	mkdir -p "$WORK/standby"
	chown postgres: "$WORK/standby"
	sport=$(txb_free_port)
	txb_as_owner "$PG_BINDIR/pg_basebackup" -d "$primary" -D "$WORK/standby/data" \
		-R -X stream -c fast
	{
		echo "port = $sport"
		echo "unix_socket_directories = '$WORK/standby'"
	} | txb_as_owner tee -a "$WORK/standby/data/postgresql.conf" >/dev/null
	txb_as_owner "$PG_BINDIR/pg_ctl" -D "$WORK/standby/data" -l "$WORK/standby/server.log" \
		-w -t 120 start >/dev/null
	standby="host=$WORK/standby port=$sport dbname=postgres user=postgres"
	for _ in $(seq 1 600); do
		[ "$("$PSQL" -XAtq -d "$primary" -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" = 1 ] && break
		sleep 0.1
	done
fi

echo "tx_barrier scale benchmark: $N waiters, $(nproc) CPUs, PostgreSQL $("$PSQL" -XAtq -d "$primary" -c 'SHOW server_version')"
echo "server 0 = primary${standby:+, server 1 = standby (B) / server 0 = standby (C)}"

status=0
for run in $RUNS; do
	"$PSQL" -XAtq -d "$primary" -c "TRUNCATE scale_jobs"
	run_start=$SECONDS
	case $run in
		A)
			echo
			echo "=== A. primary only: $N producers, $N waiters on the primary"
			"$WORK/scale_waiters" -n "$N" -p "$primary" -w "$primary" || status=1
			;;
		B)
			echo
			echo "=== B. spread: $N producers on the primary, waiters split primary/standby"
			"$WORK/scale_waiters" -n "$N" -p "$primary" -w "$primary" -w "$standby" || status=1
			;;
		C)
			echo
			echo "=== C. standby only: $N producers on the primary, $N waiters on the standby"
			"$WORK/scale_waiters" -n "$N" -p "$primary" -w "$standby" || status=1
			;;
		*)
			echo "unknown run $run" >&2
			status=1
			;;
	esac
	echo "(run $run took $((SECONDS - run_start)) s, connections included)"
done

echo
echo "=== barrier_stats()"
echo "primary:"
"$PSQL" -X -P pager=off -d "$primary" -c 'SELECT * FROM barrier_stats()'
if [ -n "$standby" ]; then
	echo "standby:"
	"$PSQL" -X -P pager=off -d "$standby" -c 'SELECT * FROM barrier_stats()'
fi
exit $status
