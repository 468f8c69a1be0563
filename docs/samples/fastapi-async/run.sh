#!/usr/bin/env bash
# The FastAPI guide (docs/guides/fastapi-async.md), in the Debian 13 root
# (SQLAlchemy 2.0 asyncio on psycopg 3.2, FastAPI 0.115, uvicorn, Celery
# 5.5): the application served by uvicorn, a real Celery worker (no
# Django), a real Redis.  check.py asserts that a committed signup is
# welcomed, the task id and token are set before COMMIT while the worker
# is blocked, a rolled-back signup's task is not run, and a plain delay()
# needs run_sync() inside an asyncio transaction.
. "$TXB_ROOT/docs/samples/lib.sh"

here=$TXB_SRC/docs/samples/fastapi-async
dir=$SAMPLE_DIR
sample_trixie_python
# A server of its own with tx_barrier in shared_preload_libraries, for the
# consumer's Waiter; the root reaches it over TCP.
txb_scratch top fastapi-async
mkdir -p "$top/pg"
txb_cluster_start_free "$top/pg" pgport "shared_preload_libraries = 'tx_barrier'" ||
	sample_fail "server did not start"
export PGHOST=127.0.0.1 PGPORT=$pgport
sample_db txb_fastapi_signups noext
psql -X -q -v ON_ERROR_STOP=1 -d txb_fastapi_signups -f "$here/schema.sql"
sample_python_package
sample_redis
export BROKER_URL=$REDIS_URL/0 RESULT_URL=$REDIS_URL/1
# The page's postgresql+psycopg:///signups, on the sample's own database.
export DATABASE_URL=postgresql+psycopg:///txb_fastapi_signups
export PYTHONPATH=/mnt/site
export WAITER_DSN="dbname=txb_fastapi_signups application_name=webhooks"
unset DJANGO_SETTINGS_MODULE
"${TRIXIE_RUN[@]}" "$here" python3 -c 'import celery, fastapi, psycopg, sqlalchemy, uvicorn
print("Debian 13: SQLAlchemy", sqlalchemy.__version__, "psycopg", psycopg.__version__,
      "FastAPI", fastapi.__version__, "uvicorn", uvicorn.__version__, "Celery", celery.__version__)'

echo "== the worker: python3 -m celery -A tasks worker --loglevel=INFO"
sample_background CELERY_WORKER_PID "$dir/worker.log" "${TRIXIE_RUN[@]}" "$here" \
	python3 -m celery -A tasks worker --loglevel=INFO --concurrency=1 \
	--without-gossip --without-mingle
echo "== the application: python3 -m uvicorn app:app"
port=$(txb_free_port)
sample_background UVICORN_PID "$dir/uvicorn.log" "${TRIXIE_RUN[@]}" "$here" \
	python3 -m uvicorn app:app --host 127.0.0.1 --port "$port"
export APP_URL=http://127.0.0.1:$port
echo "== the asyncio consumer: python3 consumer.py"
sample_background CONSUMER_PID "$dir/consumer.log" "${TRIXIE_RUN[@]}" "$here" \
	python3 consumer.py
sample_wait_log "$dir/worker.log" ' ready\.' 3000
sample_wait_log "$dir/uvicorn.log" 'Application startup complete' 3000
sample_wait_log "$dir/consumer.log" 'consuming signup-webhooks' 3000

echo "== check.py"
"${TRIXIE_RUN[@]}" "$here" python3 check.py || sample_fail check.py "$dir/worker.log" "$dir/uvicorn.log"
# One INFO line for the aborted task (Celery 5.5 words it "raised expected").
grep -E 'tasks\.send_welcome\[.*\] raised expected: TransactionAborted' "$dir/worker.log" ||
	sample_fail "no INFO line for the aborted task" "$dir/worker.log"
# The consumer: a webhook for each committed signup (ada, grace, the 5
# "ok" ones), none for the 6 rolled back (eve, the 5 "rolled" ones).
txb_wait_for "grep -c 'rolled back: no webhook' $dir/consumer.log" 6 1500 ||
	sample_fail "6 rolled-back signups expected" "$dir/consumer.log"
[ "$(sample_psql txb_fastapi_signups "SELECT count(*) FILTER (WHERE email LIKE 'rolled%' OR email LIKE 'eve%') || ' ' || count(*) FROM webhook_deliveries")" = "0 7" ] ||
	sample_fail "webhooks: $(sample_psql txb_fastapi_signups "SELECT string_agg(email, ' ') FROM webhook_deliveries")" "$dir/consumer.log"
echo "fastapi-async: ok"
