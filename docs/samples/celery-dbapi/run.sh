#!/usr/bin/env bash
# The plain Celery guide (docs/guides/celery-dbapi.md): no Django; a real
# Celery worker configured with tx_barrier_dsn, a real Redis broker;
# producers on psycopg2 and on psycopg 3.  The worker is blocked until the
# producer's COMMIT and then runs the task; after a ROLLBACK it does not.
# Run twice: the worker's connection made by psycopg2, then by psycopg 3.
. "$TXB_ROOT/docs/samples/lib.sh"

here=$TXB_SRC/docs/samples/celery-dbapi
dir=$SAMPLE_DIR
sample_db invoices noext
psql -X -q -v ON_ERROR_STOP=1 -d invoices -f "$here/setup.sql"
sample_python_package
sample_redis
export BROKER_URL=$REDIS_URL/0 RESULT_URL=$REDIS_URL/1
cd "$here"

for driver in "" psycopg; do
	echo "== worker, its barrier connection by ${driver:-psycopg2 (the default)}"
	export WORKER_DRIVER=$driver
	sample_celery_worker "$dir/worker-$driver.log" "$here" tasks
	"$PY" check.py || sample_fail check.py "$dir/worker-$driver.log"
	grep -c 'tasks.send_invoice\[.*\] not run' "$dir/worker-$driver.log" | grep -qx 2 ||
		sample_fail "two tasks not run expected" "$dir/worker-$driver.log"
	sample_stop_group "$CELERY_WORKER_PID"
done

echo "== python3 producer_psycopg2.py / producer_psycopg3.py (no worker running)"
"$PY" producer_psycopg2.py
"$PY" producer_psycopg3.py
[ "$(sample_psql invoices "SELECT count(*) FROM invoices WHERE NOT sent AND amount = 42")" = 2 ]
echo "celery-dbapi: ok"
