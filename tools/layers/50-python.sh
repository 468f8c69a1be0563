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
export TXB_PY_DB=txb_python TXB_PY_DB_OTHER=txb_python_other
export TXB_PY_DB_NOEXT=txb_python_noext   # a database without the extension
# a database with the portable edition in a schema off the search_path
export TXB_PY_DB_OFFPATH=txb_python_offpath
export TXB_PY_DEADLINE=${TXB_PY_DEADLINE:-120}   # a hang guard, not a speed

redis_pid=
worker_pid=
mounted=
inner=
stop_worker() {
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
	worker_pid=
}
stop_all() {
	stop_worker
	if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
		kill -TERM "$redis_pid" 2>/dev/null
		wait "$redis_pid" 2>/dev/null
	fi
	for m in $mounted; do
		umount "$m" || umount -l "$m"
	done
	mounted=
	[ -z "$inner" ] || rm -rf "${root:?}$inner"
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
psql -X -q -v ON_ERROR_STOP=1 -d postgres \
	-c "DROP DATABASE IF EXISTS $TXB_PY_DB_NOEXT" \
	-c "CREATE DATABASE $TXB_PY_DB_NOEXT" ||
	fail_setup "cannot create database $TXB_PY_DB_NOEXT"
psql -X -q -v ON_ERROR_STOP=1 -d postgres \
	-c "DROP DATABASE IF EXISTS $TXB_PY_DB_OFFPATH" \
	-c "CREATE DATABASE $TXB_PY_DB_OFFPATH" &&
	psql -X -q -v ON_ERROR_STOP=1 -d "$TXB_PY_DB_OFFPATH" -v schema=txb_hidden \
		-f "$TXB_SRC/portable/tx_barrier_portable.sql" >/dev/null 2>&1 &&
	psql -X -q -v ON_ERROR_STOP=1 -d "$TXB_PY_DB_OFFPATH" \
		-c "GRANT USAGE ON SCHEMA txb_hidden TO PUBLIC" ||
	fail_setup "cannot create database $TXB_PY_DB_OFFPATH"
(cd "$src/tests" && $PY -c '
import support
from django.core.management import call_command
for alias in ("default", "other"):
    call_command("migrate", run_syncdb=True, database=alias, verbosity=0)
') || fail_setup "cannot create the test tables"

# 3. Redis, on a free port of 127.0.0.1, without persistence.
txb_redis_start "$dir/redis" rport redis_pid || fail_setup "redis did not start"
export TXB_REDIS_URL="redis://127.0.0.1:$rport"
# A port nothing listens on: the broker-down test publishes to it.
TXB_PY_DEAD_PORT=$(txb_free_port) || fail_setup "no free port"
export TXB_PY_DEAD_PORT
export TXB_PY_WORKER_LOG="$dir/worker.log"

# 4. One run of the suite: a Celery worker (four prefork processes, in a
# process group of its own) and the unittest modules.  CMD runs python in
# the tests' directory, with TXB_PY_WORKER_LOG naming WLOG as it sees it.
TESTS="test_core test_celery test_publish test_drivers"
run_suite() {	# LABEL WLOG CMD...
	local label=$1 wlog=$2 ulog="$dir/unittest-$1.log"
	shift 2
	: >"$wlog"
	setsid "$@" -m celery -A testproj.celeryapp worker --loglevel=INFO \
		--concurrency=4 --hostname="txb-python@%h" --without-gossip \
		--without-mingle >"$wlog" 2>&1 &
	worker_pid=$!
	# The tests wait for the worker to answer a ping first.
	timeout -s ABRT -k 10 "${TXB_PY_TIMEOUT:-900}" "$@" -X faulthandler \
		-W ignore::DeprecationWarning -m unittest -v $TESTS >"$ulog" 2>&1
	rc=$?
	cat "$ulog"
	ran=$(sed -n 's/^Ran \([0-9]*\) tests\? in.*/\1/p' "$ulog" | tail -1)
	if [ -n "$ran" ]; then
		bad=0
		if ! grep -qE '^OK( |$)' "$ulog"; then
			f=$(sed -n 's/^FAILED (.*failures=\([0-9]*\).*/\1/p' "$ulog" | tail -1)
			e=$(sed -n 's/^FAILED (.*errors=\([0-9]*\).*/\1/p' "$ulog" | tail -1)
			bad=$(( ${f:-0} + ${e:-0} ))
			[ "$bad" -gt 0 ] || bad=1
		fi
		ok=$(( ran - bad ))
	else
		# The run did not finish (timeout): count the verdicts it printed,
		# and the test it was in as failed.
		ok=$(grep -cE ' \.\.\. ok$' "$ulog")
		bad=$(( $(grep -cE ' \.\.\. (FAIL|ERROR)$' "$ulog") + 1 ))
	fi
	[ "$ok" -ge 0 ] || ok=0
	[ "$rc" -eq 0 ] || [ "$bad" -gt 0 ] || bad=1
	if [ "$bad" -ne 0 ]; then
		echo "--- worker log (tail)"
		tail -n 80 "$wlog"
	fi
	stop_worker
}

# 5. On the host's Debian 12 Celery, Django, psycopg2 and psycopg 3.
run_suite python "$dir/worker.log" sh -c 'cd "$0" && exec "$@"' \
	"$src/tests" env TXB_PY_WORKER_LOG="$dir/worker.log" "$PY"
txb_result python $(( passed + ok )) $(( failed + bad ))
host_bad=$bad

# 6. The same on Debian 13's Celery, Django and psycopg: a trixie root made
# with mmdebstrap (cached), entered with chroot; it shares the network
# namespace, so it reaches this PostgreSQL and Redis on 127.0.0.1.
trixie_bad=0
root=${TXB_TRIXIE_ROOT:-${TXB_CACHE:-/var/cache/tx_barrier}/trixie-python}
if [ ! -x "$root/usr/bin/python3" ]; then
	mkdir -p "$(dirname "$root")"
	rm -rf "$root.new"
	mmdebstrap --quiet --variant=minbase --include=python3-celery,python3-django,python3-psycopg2,python3-psycopg,python3-redis \
		trixie "$root.new" >"$dir/mmdebstrap.log" 2>&1 &&
		mv "$root.new" "$root" || {
		cat "$dir/mmdebstrap.log"
		rm -rf "$root.new"
		txb_result python-trixie 0 1
		exit 1
	}
fi
inner=/tmp/txb-python.$$
rm -rf "${root:?}$inner"
mkdir -p "$root$inner/site"
cp -r "$dir/site/tx_barrier" "$root$inner/site/"
cp -r "$src/tests" "$root$inner/tests"
for m in proc dev dev/shm; do
	if mount --bind "/$m" "$root/$m"; then
		mounted="$root/$m $mounted"
	else
		fail_setup "cannot mount /$m in $root"
	fi
done
case "$PGHOST" in /*|'') chost=127.0.0.1 ;; *) chost=$PGHOST ;; esac
run_suite python-trixie "$root$inner/worker.log" chroot "$root" \
	sh -c 'cd "$0" && exec "$@"' "$inner/tests" env \
	PYTHONPATH="$inner/site:$inner/tests" PGHOST="$chost" \
	TXB_PY_WORKER_LOG="$inner/worker.log" python3
trixie_bad=$bad
txb_result python-trixie "$ok" "$bad"
stop_all
trap - EXIT
[ "$host_bad" -eq 0 ] && [ "$trixie_bad" -eq 0 ]
