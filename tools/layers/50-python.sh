#!/usr/bin/env bash
# The Python adapter (client/python) end to end: the package installed with
# pip, two databases with the extension, a real Redis broker, a PgBouncer in
# transaction pooling mode, real worker processes -- a Celery worker of the
# Django project, a Celery worker of a SQLAlchemy application without
# Django, an RQ worker with its scheduler -- and the unittest suite in
# client/python/tests; a second server with tx_barrier in
# shared_preload_libraries for the shared waiter (tx_barrier.Waiter).
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
bouncer_pid=
worker_pids=
mounted=
inner=
stop_worker() {
	# shellcheck disable=SC2086
	txb_stop_process_groups $worker_pids
	worker_pids=
}
stop_all() {
	stop_worker
	txb_stop_server "$redis_pid"
	if [ -n "$bouncer_pid" ]; then
		txb_pgbouncer_stop "$dir/pgbouncer" "$bouncer_pid"
		bouncer_pid=
	fi
	for m in $mounted; do
		umount "$m" || umount -l "$m"
	done
	mounted=
	[ -z "$inner" ] || rm -rf "${root:?}$inner"
	txb_cluster_stop "$dir/pg-preloaded"
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
txb_install_portable_off_path "$TXB_PY_DB_OFFPATH" "$TXB_SRC/portable/tx_barrier_portable.sql" ||
	fail_setup "cannot create database $TXB_PY_DB_OFFPATH"
(cd "$src/tests" && $PY -c '
import support
from django.core.management import call_command
for alias in ("default", "other"):
    call_command("migrate", run_syncdb=True, database=alias, verbosity=0)
') || fail_setup "cannot create the test tables"

# The preloaded server of tx_barrier.Waiter's tests (barrier_wait_any()
# sleeps only there), reached over TCP from the host and the Debian 13 root.
txb_preloaded_start "$dir/pg-preloaded" pre_port txb_python_waiter ||
	fail_setup "the preloaded server did not start"
export TXB_PY_PRELOADED_DSN="host=127.0.0.1 port=$pre_port dbname=txb_python_waiter user=postgres"

# 3. Redis, on a free port of 127.0.0.1, without persistence.
txb_redis_start "$dir/redis" rport redis_pid || fail_setup "redis did not start"
export TXB_REDIS_URL="redis://127.0.0.1:$rport"
# A port nothing listens on: the broker-down test publishes to it.
TXB_PY_DEAD_PORT=$(txb_free_port) || fail_setup "no free port"
export TXB_PY_DEAD_PORT

# PgBouncer (transaction pooling) in front of the first database.
txb_pgbouncer_start "$dir/pgbouncer" "$TXB_PY_DB" bport bouncer_pid ||
	fail_setup "pgbouncer did not start"
export TXB_PGBOUNCER_PORT=$bport

# 4. One run of the suite: the workers (each in a process group of its own)
# and the unittest modules.  CMD runs python in the tests' directory, with
# TXB_PY_WORKER_LOG naming LOGDIR/worker.log as it sees it; LOGDIR is the
# directory as this shell sees it.
#   worker.log     Celery worker of the Django project (four prefork
#                  processes; the Django settings are its configuration)
#   sa-worker.log  Celery worker of sa_app: SQLAlchemy, no Django at all
#   rq-worker.log  rq worker --with-scheduler --worker-class rq_jobs.Worker
#                  (TXB_PY_RQ_LOG names it as the tests see it)
TESTS="test_core test_celery test_publish test_drivers test_sqlalchemy test_rq test_waiter"
# The portable edition has no barrier_wait_any(): of the Waiter's tests only
# the one of its 42883 there.
[ -z "${TXB_INSTALL_SQL:-}" ] ||
	TESTS=${TESTS/test_waiter/test_waiter.WaiterUnavailableTest.test_without_barrier_wait_any}
run_suite() {	# LABEL LOGDIR CMD...
	local label=$1 logdir=$2 ulog="$dir/unittest-$1.log"
	local wlog=$2/worker.log
	shift 2
	: >"$wlog"
	setsid "$@" -m celery -A testproj.celeryapp worker --loglevel=INFO \
		--concurrency=4 --hostname="txb-python@%h" --without-gossip \
		--without-mingle >"$wlog" 2>&1 &
	worker_pids=$!
	# No DJANGO_SETTINGS_MODULE: sa_app's worker must not need Django.
	setsid "$@" -m celery -A sa_app worker --loglevel=INFO -Q txb_sa \
		--concurrency=2 --hostname="txb-sa@%h" --without-gossip \
		--without-mingle >"$logdir/sa-worker.log" 2>&1 &
	worker_pids="$worker_pids $!"
	setsid "$@" -m rq.cli worker --with-scheduler --worker-class rq_jobs.Worker \
		--url "$TXB_REDIS_URL/4" txb_rq >"$logdir/rq-worker.log" 2>&1 &
	worker_pids="$worker_pids $!"
	# The tests wait for the worker to answer a ping first.
	timeout -s ABRT -k 10 "${TXB_PY_TIMEOUT:-900}" "$@" -X faulthandler \
		-W ignore::DeprecationWarning -m unittest -v $TESTS >"$ulog" 2>&1
	rc=$?
	cat "$ulog"
	# A skipped test counts as failed: the layer provides every server.
	read -r ok bad < <(txb_count_unittest "$ulog" "$rc")
	if [ "$bad" -ne 0 ]; then
		echo "--- worker log (tail)"
		tail -n 80 "$wlog"
		echo "--- sa_app worker log (tail)"
		tail -n 40 "$logdir/sa-worker.log"
		echo "--- rq worker log (tail)"
		tail -n 40 "$logdir/rq-worker.log"
	fi
	stop_worker
}

# 5. On the host's Debian 12 Celery, Django, SQLAlchemy, psycopg2 and
# psycopg 3.
"$PY" -c 'import celery, django, sqlalchemy, psycopg, psycopg2, rq
print("Debian 12: Celery", celery.__version__, "Django", django.__version__,
      "SQLAlchemy", sqlalchemy.__version__, "RQ", rq.__version__,
      "psycopg", psycopg.__version__,
      "psycopg2", psycopg2.__version__.split()[0])' 
run_suite python "$dir" sh -c 'cd "$0" && exec "$@"' \
	"$src/tests" env -u DJANGO_SETTINGS_MODULE \
	TXB_PY_WORKER_LOG="$dir/worker.log" TXB_PY_RQ_LOG="$dir/rq-worker.log" "$PY"
txb_result python $(( passed + ok )) $(( failed + bad ))
host_bad=$bad

# 6. The same on Debian 13's Celery, Django, SQLAlchemy, psycopg and RQ: the
# trixie root of txb_trixie_python_root (made once with mmdebstrap, cached),
# entered with chroot; it shares the network namespace, so it reaches this
# PostgreSQL, Redis and PgBouncer on 127.0.0.1.
trixie_bad=0
txb_trixie_python_root root "$dir/mmdebstrap.log" || {
	txb_result python-trixie 0 1
	exit 1
}
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
chroot "$root" python3 -c 'import celery, django, sqlalchemy, psycopg, psycopg2, rq
print("Debian 13: Celery", celery.__version__, "Django", django.__version__,
      "SQLAlchemy", sqlalchemy.__version__, "RQ", rq.__version__,
      "psycopg", psycopg.__version__,
      "psycopg2", psycopg2.__version__.split()[0])'
run_suite python-trixie "$root$inner" chroot "$root" \
	sh -c 'cd "$0" && exec "$@"' "$inner/tests" env -u DJANGO_SETTINGS_MODULE \
	PYTHONPATH="$inner/site:$inner/tests" PGHOST="$chost" \
	TXB_PY_WORKER_LOG="$inner/worker.log" TXB_PY_RQ_LOG="$inner/rq-worker.log" python3
trixie_bad=$bad
txb_result python-trixie "$ok" "$bad"
stop_all
trap - EXIT
[ "$host_bad" -eq 0 ] && [ "$trixie_bad" -eq 0 ]
