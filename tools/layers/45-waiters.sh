#!/usr/bin/env bash
# The shared waiters over barrier_wait_any(), on each major of the matrix:
# the C library's txb_waiter (client/test/test_waiter.c, under prove),
# Python's tx_barrier.Waiter (client/python/tests/test_waiter.py, unittest)
# and Node's Waiter (client/node/test/waiter.test.mjs, node --test), each
# test (each prove assertion) one result.  barrier_wait_any() itself is
# covered on every major by the regress, isolation and pgtap layers, but
# these suites belong to the client, python and node layers, which run on
# the host's major only; this layer runs exactly them against each other
# major's servers, from the host, with the clients as the client layers
# have them: the C library and test built from the tree against the host's
# libpq (Debian's), Debian 12's python3 with its psycopg2 and psycopg (the
# package from the tree, the tests' Django/Celery settings), Node with the
# packages of the node layer's package-lock.json (npm ci).  What the suites
# need is set up as those layers do: a second server of the major with
# tx_barrier in shared_preload_libraries (the shared waits, and the Node
# tests' tables), a database with the extension on the layer's shared
# server, which does not preload it (the 55000 answers), one without the
# extension (42883), and a Redis for the BullMQ test.  On the major that
# runs every layer the client layers run these suites already: there the
# layer skips (counted neither as passed nor as failed).
# majors: all
. "$TXB_ROOT/tools/results.sh"
. "$TXB_ROOT/tools/cluster.sh"

if [ "${TXB_ALL_LAYERS:-}" = yes ]; then
	txb_skip waiters "the client, python and node layers run these suites on PostgreSQL $TXB_PG_MAJOR"
	exit 0
fi

dir="$TXB_WORK/waiters"
mkdir -p "$dir/redis"
DB=txb_waiters
NOEXT=txb_waiters_noext
passed=0
failed=0

redis_pid=
stop_all() {
	txb_stop_server "$redis_pid"
	txb_cluster_stop "$dir/pg-preloaded"
}
trap stop_all EXIT

fail_setup() {
	echo "waiters layer: $*" >&2
	txb_result waiters "$passed" $((failed + 1))
	exit 1
}

# suite NAME PASSED FAILED: one suite's counts, added to the layer's.
suite() {
	echo "waiters: $1 on PostgreSQL $TXB_PG_MAJOR: $2 passed, $3 failed"
	passed=$((passed + $2))
	failed=$((failed + $3))
}

# The shared server (no preloading): a database with the extension and one
# without.
if ! psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" \
	-c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" \
	-c "DROP DATABASE IF EXISTS $NOEXT WITH (FORCE)" -c "CREATE DATABASE $NOEXT" ||
	! txb_install_barrier "$DB"; then
	fail_setup "cannot create the shared server's databases"
fi

# The preloaded server (barrier_wait_any() sleeps only there), on 127.0.0.1.
pre_port=
txb_preloaded_start "$dir/pg-preloaded" pre_port "$DB" "$TXB_SRC/client/node/test/tables.sql" ||
	fail_setup "the preloaded server or its database did not start"

rport=
txb_redis_start "$dir/redis" rport redis_pid || fail_setup "redis did not start"
export TXB_REDIS_URL="redis://127.0.0.1:$rport"

# ------------------------------------------------------------------ C
src="$TXB_SRC/client"
if make -C "$src" clean >/dev/null 2>&1 &&
	make -C "$src" PG_CONFIG="$TXB_HOST_PG_CONFIG" test/test_waiter \
		>"$dir/c-build.log" 2>&1; then
	(cd "$src" && TXB_TEST_PRELOADED_CONNINFO="host=127.0.0.1 port=$pre_port dbname=$DB" \
		TXB_TEST_CONNINFO="dbname=$DB" TXB_TEST_NOEXT_CONNINFO="dbname=$NOEXT" \
		timeout 600 prove -v test/test_waiter) >"$dir/c-prove.log" 2>&1
	grep -E '^(not ok|Bail out|# )' "$dir/c-prove.log"
	tail -n 4 "$dir/c-prove.log"
	read -r p f < <(txb_count_prove "$dir/c-prove.log")
else
	tail -n 40 "$dir/c-build.log"
	p=0 f=1
fi
suite "C txb_waiter (test_waiter)" "$p" "$f"

# ------------------------------------------------------------------ Python
src="$TXB_SRC/client/python"
(cd "$src/tests" && env -u DJANGO_SETTINGS_MODULE PYTHONPATH="$src:$src/tests" \
	TXB_PY_DB=$DB TXB_PY_DB_NOEXT=$NOEXT TXB_PY_DEADLINE="${TXB_PY_DEADLINE:-120}" \
	TXB_PY_PRELOADED_DSN="host=127.0.0.1 port=$pre_port dbname=$DB user=postgres" \
	timeout -s ABRT -k 10 600 /usr/bin/python3 -X faulthandler \
	-W ignore::DeprecationWarning -m unittest -v test_waiter) >"$dir/python.log" 2>&1
rc=$?
read -r p f < <(txb_count_unittest "$dir/python.log" "$rc")
if [ "$f" -eq 0 ]; then
	tail -n 3 "$dir/python.log"
else
	cat "$dir/python.log"
fi
suite "Python tx_barrier.Waiter (test_waiter.py)" "$p" "$f"

# ------------------------------------------------------------------ Node
src="$TXB_SRC/client/node"
if txb_npm_ci "$src" "$dir/npm-ci.log"; then
	(cd "$src" && PGDATABASE=$DB TXB_NODE_DB_NOEXT=$NOEXT \
		TXB_NODE_PRELOADED_PORT=$pre_port TXB_NODE_PRELOADED_DB=$DB \
		timeout -s TERM -k 10 600 node --test --test-reporter=tap \
		test/waiter.test.mjs) >"$dir/node.log" 2>&1
	rc=$?
	read -r p f < <(txb_count_node_tap "$dir/node.log" "$rc")
	if [ "$f" -eq 0 ]; then
		grep -E '^# (tests|pass|fail|duration_ms) ' "$dir/node.log"
	else
		cat "$dir/node.log"
	fi
else
	p=0 f=1
fi
suite "Node Waiter (waiter.test.mjs)" "$p" "$f"

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
	-c "DROP DATABASE IF EXISTS $NOEXT WITH (FORCE)" >/dev/null 2>&1
stop_all
trap - EXIT
txb_result waiters "$passed" "$failed"
[ "$failed" -eq 0 ]
