#!/usr/bin/env bash
# The Celery/Django adapter (client/python) end to end: the package installed
# with pip, two databases with the extension, a real Redis broker, a real
# Celery worker process, and the unittest suite in client/python/tests.
. "$TXB_ROOT/tools/results.sh"
. "$TXB_ROOT/tools/cluster.sh"

PY=/usr/bin/python3     # Debian's python3, which has celery/django/psycopg2
src="$TXB_SRC/client/python"
dir="$TXB_WORK/python"
mkdir -p "$dir/redis"
log="$dir/unittest.log"
export TXB_PY_DB=txb_python TXB_PY_DB_OTHER=txb_python_other
export TXB_PY_DEADLINE=${TXB_PY_DEADLINE:-30}

redis_pid=
worker_pid=
stop_all() {
	if [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then
		# Warm shutdown of the worker and its pool (its own process group).
		kill -TERM -- "-$worker_pid" 2>/dev/null
		for _ in $(seq 1 100); do
			kill -0 "$worker_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$worker_pid" 2>/dev/null
		wait "$worker_pid" 2>/dev/null
	fi
	if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
		kill -TERM "$redis_pid" 2>/dev/null
		wait "$redis_pid" 2>/dev/null
	fi
}
trap stop_all EXIT

fail_setup() {
	echo "python layer: $*" >&2
	txb_result python "${passed:-0}" $(( ${failed:-0} + 1 ))
	exit 1
}

# 1. The package, installed the way the README says, into a private target.
passed=0
failed=0
rm -rf "$dir/site" "$src/build" "$src"/*.egg-info
if $PY -m pip install --quiet --no-build-isolation --no-deps \
	--target "$dir/site" "$src" >"$dir/pip.log" 2>&1 &&
	[ -f "$dir/site/tx_barrier/celery.py" ]; then
	echo "pip install ./client/python: ok"
	passed=1
else
	cat "$dir/pip.log"
	fail_setup "pip install failed"
fi
export PYTHONPATH="$dir/site:$src/tests"

# 2. Two databases with the extension, and the test project's tables.
for db in "$TXB_PY_DB" "$TXB_PY_DB_OTHER"; do
	psql -X -q -v ON_ERROR_STOP=1 -d postgres \
		-c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" &&
		txb_install_barrier "$db" ||
		fail_setup "cannot create database $db"
done
(cd "$src/tests" && $PY -c '
import support
from django.core.management import call_command
for alias in ("default", "other"):
    call_command("migrate", run_syncdb=True, database=alias, verbosity=0)
') || fail_setup "cannot create the test tables"

# 3. Redis, on a free port of 127.0.0.1, without persistence.
rport=$(txb_free_port) || fail_setup "no free port for redis"
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
	--dir "$dir/redis" --logfile "$dir/redis/redis.log" --daemonize no &
redis_pid=$!
export TXB_REDIS_URL="redis://127.0.0.1:$rport"
for _ in $(seq 1 100); do
	[ "$(redis-cli -p "$rport" ping 2>/dev/null)" = PONG ] && break
	kill -0 "$redis_pid" 2>/dev/null || break
	sleep 0.1
done
[ "$(redis-cli -p "$rport" ping 2>/dev/null)" = PONG ] ||
	fail_setup "redis did not start: $(cat "$dir/redis/redis.log")"

# 4. A Celery worker: four prefork processes, in a process group of its own.
(cd "$src/tests" && exec setsid $PY -m celery -A testproj.celeryapp worker \
	--loglevel=INFO --concurrency=4 --hostname="txb-python@%h" \
	--without-gossip --without-mingle >"$dir/worker.log" 2>&1) &
worker_pid=$!

# 5. The tests (they wait for the worker to answer a ping first).
(cd "$src/tests" && timeout -s ABRT -k 10 "${TXB_PY_TIMEOUT:-300}" \
	$PY -X faulthandler -W ignore::DeprecationWarning -m unittest -v test_core test_celery) \
	>"$log" 2>&1
rc=$?
cat "$log"

ran=$(sed -n 's/^Ran \([0-9]*\) tests\? in.*/\1/p' "$log" | tail -1)
if [ -n "$ran" ]; then
	bad=0
	if ! grep -qE '^OK( |$)' "$log"; then
		f=$(sed -n 's/^FAILED (.*failures=\([0-9]*\).*/\1/p' "$log" | tail -1)
		e=$(sed -n 's/^FAILED (.*errors=\([0-9]*\).*/\1/p' "$log" | tail -1)
		bad=$(( ${f:-0} + ${e:-0} ))
		[ "$bad" -gt 0 ] || bad=1
	fi
	ok=$(( ran - bad ))
else
	# The run did not finish (timeout): count the verdicts it printed, and
	# the test it was in as failed.
	ok=$(grep -cE ' \.\.\. ok$' "$log")
	bad=$(( $(grep -cE ' \.\.\. (FAIL|ERROR)$' "$log") + 1 ))
fi
[ "$ok" -ge 0 ] || ok=0
if [ "$bad" -ne 0 ]; then
	echo "--- worker log (tail)"
	tail -n 80 "$dir/worker.log"
fi
stop_all
trap - EXIT
txb_result python $(( passed + ok )) $(( failed + bad ))
[ "$bad" -eq 0 ] && [ "$rc" -eq 0 ]
