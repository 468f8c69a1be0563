#!/usr/bin/env bash
# The RQ guide (docs/guides/rq.md): a real `rq worker --with-scheduler
# --worker-class jobs.ReportWorker reports`, a real Redis; producers in
# SQLAlchemy sessions.  check.py asserts that a committed report's job
# runs (its id known before COMMIT), a rolled-back one's is cancelled and
# not retried, and a transaction open past the bound gets its job
# scheduled again while the worker runs other jobs; then producer.py as
# the page shows it.
. "$TXB_ROOT/docs/samples/lib.sh"

here=$TXB_SRC/docs/samples/rq
dir=$SAMPLE_DIR
sample_db txb_rq_reports noext
psql -X -q -v ON_ERROR_STOP=1 -d txb_rq_reports -f "$here/schema.sql"
sample_python_package
sample_redis
export REDIS_URL=$REDIS_URL/0
# The page's postgresql+psycopg2:///reports, on the sample's own database.
export DATABASE_URL=postgresql+psycopg2:///txb_rq_reports
cd "$here"

echo "== rq worker --with-scheduler --worker-class jobs.ReportWorker --url \$REDIS_URL reports"
sample_background RQ_WORKER_PID "$dir/worker.log" \
	rq worker --with-scheduler --worker-class jobs.ReportWorker --url "$REDIS_URL" reports
sample_wait_log "$dir/worker.log" 'Listening on reports' 3000

echo "== check.py"
"$PY" check.py || sample_fail check.py "$dir/worker.log"
grep -qE 'job .* not run: the transaction that produced token [0-9]+ aborted' "$dir/worker.log" ||
	sample_fail "no 'not run' line" "$dir/worker.log"

echo "== python3 producer.py"
out=$("$PY" producer.py)
echo "$out"
id=$(echo "$out" | sed -n 's/^report \([0-9]*\) job .*/\1/p')
txb_wait_for "psql -X -At -d txb_rq_reports -c 'SELECT rendered FROM reports WHERE id = $id'" t 1500 ||
	sample_fail "report $id not rendered" "$dir/worker.log"
echo "rq: ok"
