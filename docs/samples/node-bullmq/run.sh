#!/usr/bin/env bash
# The Node.js + BullMQ guide (docs/guides/node-bullmq.md): tx-barrier
# installed into a scratch application as install.sh says (--install-links
# from the checkout; bullmq, pg and ioredis at the versions of client/node's
# lockfile), a real Redis, a real BullMQ worker (worker.mjs) and check.mjs:
# the worker waits for the producer's COMMIT and then runs the job; after a
# ROLLBACK the job fails once, with TransactionAbortedError, although its
# attempts are 5.
. "$TXB_ROOT/docs/samples/lib.sh"

here=$TXB_ROOT/docs/samples/node-bullmq
app=$SAMPLE_DIR/app
export PGDATABASE=signup
sample_db signup noext
psql -X -q -v ON_ERROR_STOP=1 -f "$here/setup.sql"
sample_redis

echo "== install.sh, in a new application"
mkdir -p "$app"
echo '{ "name": "signup", "version": "1.0.0", "private": true, "type": "module" }' >"$app/package.json"
locked() {
	node -e "console.log(require('$TXB_SRC/client/node/package-lock.json').packages['node_modules/$1'].version)"
}
flags="--no-audit --no-fund --prefer-offline --loglevel=error"
sed -e "s#/path/to/tx_barrier/client/node#$TXB_SRC/client/node#" \
	-e "s#^npm install pg bullmq ioredis #npm install pg@$(locked pg) bullmq@$(locked bullmq) ioredis@$(locked ioredis) #" \
	-e "s#^npm install #npm install $flags #" "$here/install.sh" >"$SAMPLE_DIR/install.sh"
(cd "$app" && bash -e "$SAMPLE_DIR/install.sh") >"$SAMPLE_DIR/npm.log" 2>&1 ||
	sample_fail "npm install" "$SAMPLE_DIR/npm.log"
[ -d "$app/node_modules/tx-barrier" ] && [ ! -L "$app/node_modules/tx-barrier" ] ||
	sample_fail "tx-barrier is not a copy in node_modules"
cp "$here"/*.mjs "$app/"

echo "== node worker.mjs"
cd "$app"
sample_background worker_pid "$SAMPLE_DIR/worker.log" node worker.mjs
sample_wait_log "$SAMPLE_DIR/worker.log" '^worker ready$'

echo "== node check.mjs"
node check.mjs || sample_fail check.mjs "$SAMPLE_DIR/worker.log"
sample_wait_log "$SAMPLE_DIR/worker.log" 'its transaction rolled back, not run$'
grep -c 'welcomed ada@example.com' "$SAMPLE_DIR/worker.log" | grep -qx 1 ||
	sample_fail "the committed job did not run exactly once" "$SAMPLE_DIR/worker.log"
! grep -q 'bob@example.com' "$SAMPLE_DIR/worker.log" ||
	sample_fail "the rolled-back job ran" "$SAMPLE_DIR/worker.log"
cat "$SAMPLE_DIR/worker.log"
echo "node-bullmq: ok"
