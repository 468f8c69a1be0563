#!/usr/bin/env bash
# Demonstrates tx_barrier end to end on a throwaway local cluster: a
# producer transaction takes a token and, before it commits, a worker starts
# waiting on that token; the worker wakes with "committed" (and sees the
# row) when the producer commits, and with "aborted" when another producer
# rolls back.  Installs what it needs; run as root on a fresh machine.
set -euo pipefail

TXB_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$TXB_ROOT/tools/cluster.sh"

"$TXB_ROOT/tools/deps.sh"
"$TXB_ROOT/tools/install.sh"

txb_scratch work demo
mkdir -p "$work/pg"

port=$(txb_free_port)
txb_cluster_start "$work/pg" "$port"
export PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
echo "== throwaway PostgreSQL $TXB_PG_MAJOR cluster on port $port ($work)"

psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION tx_barrier;
CREATE TABLE orders (id int PRIMARY KEY, status text);
SQL
echo "== CREATE EXTENSION tx_barrier: done"

# A psql session we can feed statement by statement: the producer.
coproc PRODUCER { psql -X -q -A -t -v ON_ERROR_STOP=1 2>&1; }
txb_on_exit '[ -n "${PRODUCER_PID:-}" ] && kill "$PRODUCER_PID" 2>/dev/null'
producer() {
	echo "$1" >&"${PRODUCER[1]}"
}
producer_read() {
	local line
	IFS= read -r -t 30 line <&"${PRODUCER[0]}"
	echo "$line"
}

run_case() {
	local id=$1 ending=$2 token
	echo
	echo "== producer: BEGIN; INSERT order $id; SELECT barrier_enqueue();"
	producer "BEGIN;"
	producer "INSERT INTO orders VALUES ($id, 'paid');"
	producer "SELECT barrier_enqueue();"
	token=$(producer_read)
	echo "   token $token goes to the broker with the task, before the producer ends"

	echo "== worker: SELECT barrier_wait('$token'); then reads order $id"
	PGAPPNAME=demo-worker psql -X -A -t -v ON_ERROR_STOP=1 \
		-c "SELECT 'barrier_wait -> ' || barrier_wait('$token')" \
		-c "SELECT 'worker sees ' || count(*) || ' row(s) for order $id' FROM orders WHERE id = $id" \
		>"$work/worker.out" 2>&1 &
	local worker=$!
	# Until the worker's barrier_wait sleeps on the producer's xid lock.
	txb_wait_for "txb_lock_waiting demo-worker '$token'" t
	echo "   worker is blocked (pg_locks: waiting for the producer's transaction id), not polling"

	echo "== producer: $ending"
	producer "$ending"
	producer "SELECT 'producer done';"
	producer_read >/dev/null
	wait "$worker"
	sed 's/^/   /' "$work/worker.out"
	echo "   barrier_status('$token') = $(psql -X -A -t -c "SELECT barrier_status('$token')")"
}

run_case 1 "COMMIT;"
run_case 2 "ROLLBACK;"

producer "\\q"
wait "$PRODUCER_PID" 2>/dev/null || true
PRODUCER_PID=
echo
echo "== demo finished; the cluster is being removed"
