#!/usr/bin/env bash
# The SQLAlchemy and Celery guide (docs/guides/sqlalchemy-celery.md): a
# Flask view writing through a SQLAlchemy session, a real Celery worker
# started with -A tasks (no Django anywhere: its barrier connections come
# from the SQLAlchemy engine), a real Redis broker.  check.py asserts that
# a committed order is shipped, a rolled-back one's task is not run, the
# task id is real before COMMIT, savepoints decide for the tasks spawned in
# them, and eager mode waits for nothing.
. "$TXB_ROOT/docs/samples/lib.sh"

here=$TXB_SRC/docs/samples/sqlalchemy-celery
dir=$SAMPLE_DIR
sample_db txb_sa_shop noext
psql -X -q -v ON_ERROR_STOP=1 -d txb_sa_shop -f "$here/schema.sql"
sample_python_package
sample_redis
export BROKER_URL=$REDIS_URL/0 RESULT_URL=$REDIS_URL/1
# The page's postgresql+psycopg2:///shop, on the sample's own database.
export DATABASE_URL=postgresql+psycopg2:///txb_sa_shop
unset DJANGO_SETTINGS_MODULE
cd "$here"

echo "== the worker: python3 -m celery -A tasks worker --loglevel=INFO"
sample_celery_worker "$dir/worker.log" "$here" tasks

echo "== check.py"
"$PY" check.py || sample_fail check.py "$dir/worker.log"
n=$(grep -cE 'tasks\.(ship_order|print_gift_card)\[.*\] not run' "$dir/worker.log" || true)
[ "$n" = 2 ] || sample_fail "two tasks not run expected, $n logged" "$dir/worker.log"

echo "== check_flask_sqlalchemy.py"
"$PY" check_flask_sqlalchemy.py || sample_fail check_flask_sqlalchemy.py "$dir/worker.log"
# The rejected order's task: published, then not run.
txb_wait_for "grep -cE 'tasks\.ship_order\[.*\] not run' $dir/worker.log" 2 1500 ||
	sample_fail "the rejected order's task not seen aborted" "$dir/worker.log"
[ "$(sample_psql txb_sa_shop "SELECT count(*) FROM orders WHERE item IN ('vase', 'clock', 'anvil')")" = 0 ]
echo "sqlalchemy-celery: ok"
