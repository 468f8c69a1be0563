#!/usr/bin/env bash
# The Node.js client and its BullMQ integration (client/node) end to end:
# the package's dependencies installed with `npm ci` from the committed
# lockfile, a database with the extension (and one without), a real Redis,
# a real PgBouncer in transaction pooling mode, and the `node --test` suite,
# which starts real BullMQ workers and producers in child processes, and a
# second server with tx_barrier in shared_preload_libraries for the shared
# waiter (Waiter, over barrier_wait_any()).  Each
# node test counts as one pass or failure (parsed from the TAP reporter).
. "$TXB_ROOT/tools/results.sh"
. "$TXB_ROOT/tools/cluster.sh"

src="$TXB_SRC/client/node"
dir="$TXB_WORK/node"
mkdir -p "$dir/redis"
log="$dir/node-test.log"
export PGDATABASE=txb_node TXB_NODE_DB_NOEXT=txb_node_noext

redis_pid=
bouncer_pid=
stop_all() {
	txb_pgbouncer_stop "$dir/pgbouncer" "$bouncer_pid"
	txb_stop_server "$redis_pid"
	txb_cluster_stop "$dir/pg-preloaded"
}
trap stop_all EXIT

passed=0
failed=0
fail_setup() {
	echo "node layer: $*" >&2
	txb_result node "$passed" $(( failed + 1 ))
	exit 1
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	fail_setup "node and npm are needed (tools/deps.sh installs them)"
fi
echo "node $(node --version), npm $(npm --version 2>/dev/null)"

# 1. Dependencies, exactly as locked.
if txb_npm_ci "$src" "$dir/npm-ci.log"; then
	echo "npm ci: ok"
	passed=$(( passed + 1 ))
else
	fail_setup "npm ci failed"
fi

# 2. A database with the extension and the tests' tables, and one without.
tables="$src/test/tables.sql"
if ! psql -X -q -v ON_ERROR_STOP=1 -d postgres \
	-c "DROP DATABASE IF EXISTS txb_node WITH (FORCE)" -c "CREATE DATABASE txb_node" \
	-c "DROP DATABASE IF EXISTS txb_node_noext WITH (FORCE)" -c "CREATE DATABASE txb_node_noext" ||
	! psql -X -q -v ON_ERROR_STOP=1 -d txb_node -c "CREATE EXTENSION tx_barrier" -f "$tables"
then
	fail_setup "cannot create the databases"
fi

# The preloaded server of the Waiter's tests (barrier_wait_any() sleeps only
# there), on 127.0.0.1.
txb_preloaded_start "$dir/pg-preloaded" pre_port txb_node_waiter "$tables" ||
	fail_setup "the preloaded server or its database did not start"
export TXB_NODE_PRELOADED_PORT=$pre_port TXB_NODE_PRELOADED_DB=txb_node_waiter

# 3. Redis, on a free port of 127.0.0.1, without persistence.
txb_redis_start "$dir/redis" rport redis_pid || fail_setup "redis did not start"
export TXB_REDIS_URL="redis://127.0.0.1:$rport"

# 4. PgBouncer in transaction pooling mode in front of the shared server.
txb_pgbouncer_start "$dir/pgbouncer" txb_node bport bouncer_pid ||
	fail_setup "pgbouncer did not start"
export TXB_PGBOUNCER_PORT=$bport

# 5. The tests, one file at a time (they share the databases and Redis);
# Debian's node 18 has no --test-concurrency (and runs one file per core).
serial=
node --test-concurrency=1 -e 0 2>/dev/null && serial=--test-concurrency=1
(cd "$src" && timeout -s TERM -k 10 "${TXB_NODE_TIMEOUT:-600}" \
	node --test $serial --test-reporter=tap test/*.test.mjs) >"$log" 2>&1
rc=$?
cat "$log"

# Each test one result; a skipped one counts as failed.
read -r ok bad < <(txb_count_node_tap "$log" "$rc")
stop_all
trap - EXIT
txb_result node $(( passed + ok )) $(( failed + bad ))
[ "$bad" -eq 0 ] && [ "$rc" -eq 0 ]
