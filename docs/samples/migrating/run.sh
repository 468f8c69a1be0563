#!/usr/bin/env bash
# Migrating from transaction.on_commit (docs/migrating.md): the same order
# placed with before.py (on_commit + delay) and after.py (a barrier), with
# a real Celery worker and Redis.  Both ship a committed order; only the
# barrier gives the task id before COMMIT; a producer killed right after
# COMMIT loses the on_commit task (the order stays unshipped) but not the
# barrier task (published before COMMIT: it is shipped).
. "$TXB_ROOT/docs/samples/lib.sh"

here=$TXB_SRC/docs/samples/migrating
export PGDATABASE=migrating
sample_db migrating
sample_psql migrating "CREATE TABLE orders (id serial PRIMARY KEY, item text, shipped bool NOT NULL DEFAULT false)"
sample_python_package
sample_redis
cd "$here"
sample_celery_worker "$SAMPLE_DIR/worker.log" "$here" shop
shipped() { sample_psql migrating "SELECT shipped FROM orders WHERE id = $1"; }

order() {	# MODULE [die]: runs check.py, sets ORDER and TASK
	local out rc=0
	out=$("$PY" check.py "$@") || rc=$?
	if [ "${2:-}" = die ]; then
		[ $rc = 137 ] || sample_fail "check.py $* exited $rc, not killed"
		ORDER=$(sample_psql migrating "SELECT max(id) FROM orders") TASK=
	else
		[ $rc = 0 ] || sample_fail "check.py $* exited $rc" "$SAMPLE_DIR/worker.log"
		[[ $out =~ ^order\ ([0-9]+)\ task\ (.*)$ ]] || sample_fail "bad output: $out"
		ORDER=${BASH_REMATCH[1]} TASK=${BASH_REMATCH[2]}
	fi
}

echo "== before.py: on_commit"
order before
[ "$TASK" = None ] || sample_fail "on_commit gave a task id"
txb_wait_for "shipped $ORDER" t || sample_fail "not shipped" "$SAMPLE_DIR/worker.log"
echo "order $ORDER shipped; no task id before COMMIT"

echo "== after.py: a barrier"
order after
[[ $TASK =~ ^[0-9a-f-]{36}$ ]] || sample_fail "no task id: $TASK"
txb_wait_for "shipped $ORDER" t || sample_fail "not shipped" "$SAMPLE_DIR/worker.log"
grep -q "ship_with_barrier\[$TASK\] succeeded" "$SAMPLE_DIR/worker.log" ||
	sample_wait_log "$SAMPLE_DIR/worker.log" "ship_with_barrier\[$TASK\] succeeded"
echo "order $ORDER shipped by task $TASK, whose id was known before COMMIT"

echo "== killed right after COMMIT: before.py"
order before die
lost=$ORDER
[ "$(sample_psql migrating "SELECT item FROM orders WHERE id = $lost")" = crash ]
echo "== killed right after COMMIT: after.py"
order after die
txb_wait_for "shipped $ORDER" t || sample_fail "the barrier task was lost" "$SAMPLE_DIR/worker.log"
echo "order $ORDER (after.py) shipped although its producer died after COMMIT"
# One worker process takes tasks in order: had before.py's task been
# published, it would have run before after.py's.
[ "$(shipped "$lost")" = f ] || sample_fail "the on_commit task ran"
[ "$(redis-cli -p "$REDIS_PORT" -n 0 llen celery)" = 0 ]
echo "order $lost (before.py) committed and never shipped: its task was never published"
echo "migrating: ok"
