#!/usr/bin/env bash
# Runs the quick start (docs/quickstart.md) end to end, its files as they
# are shown there, against the server the docs layer gives it (see
# docs/samples/README.md): the Debian packages resolve (apt-get -s), the
# extension and the Python package build and install, the database is set
# up, a real Celery worker with a real Redis waits on the producer's token
# and ships the order after COMMIT, and does not run the task after ROLLBACK.
set -euo pipefail
. "$TXB_ROOT/tools/cluster.sh"

here=$TXB_ROOT/docs/samples/quickstart
dir=$TXB_SAMPLE_DIR
export HOME=$dir/home              # pip --user installs into $dir/home/.local
mkdir -p "$HOME"
# The role the reader gets; the commands then connect as it.
export USER=txb_quickstart
admin() { PGUSER=postgres "$@"; }

cleanup() {
	set +e
	if [ -n "${worker_pid:-}" ]; then
		kill -TERM -- "-$worker_pid" 2>/dev/null
		for _ in $(seq 1 100); do kill -0 "$worker_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$worker_pid" 2>/dev/null
	fi
	[ -n "${redis_pid:-}" ] && kill "$redis_pid" 2>/dev/null
	admin dropdb --if-exists shop
	admin psql -X -q -c "DROP ROLE IF EXISTS $USER"
}
trap cleanup EXIT
admin dropdb --if-exists shop
admin psql -X -q -c "DROP ROLE IF EXISTS $USER"

echo "== packages.sh (simulated: apt-get -s)"
sed -e 's/^sudo apt-get install -y/apt-get install -s/' "$here/packages.sh" | bash >"$dir/apt.log"
grep -q 'newly installed' "$dir/apt.log" || { cat "$dir/apt.log"; exit 1; }

echo "== build.sh (in a copy of the tree, for the server under test)"
cd "$TXB_SRC"
sed -e 's/^sudo //' -e "s#/usr/lib/postgresql/15/bin/pg_config#$PG_CONFIG#g" "$here/build.sh" |
	bash >"$dir/build.log" 2>&1 || { cat "$dir/build.log"; exit 1; }
[ -f "$HOME/.local/lib/python3.11/site-packages/tx_barrier/celery.py" ] ||
	ls "$HOME"/.local/lib/python3*/site-packages/tx_barrier/celery.py >/dev/null

echo "== database.sh"
sed -e 's/^sudo -u postgres /PGUSER=postgres /' "$here/database.sh" |
	PGUSER=$USER bash
export PGUSER=$USER

echo "== the worker: celery -A tasks worker --loglevel=INFO"
txb_redis_start "$dir/redis" redis_port redis_pid
export BROKER_URL=redis://127.0.0.1:$redis_port/0
cd "$TXB_SRC/docs/samples/quickstart"
setsid celery -A tasks worker --loglevel=INFO --concurrency=1 >"$dir/worker.log" 2>&1 &
worker_pid=$!
txb_wait_for "grep -c ' ready\.' '$dir/worker.log'" 1 3000 || { cat "$dir/worker.log"; exit 1; }

# One producer run: publishes, waits until the worker is blocked on its
# token, then answers the prompt with $1.
produce() {
	local answer=$1 line token
	coproc PRODUCER { python3 -u producer.py 2>&1; }
	IFS= read -r -t 60 line <&"${PRODUCER[0]}"
	echo "producer: $line"
	token=${line##* token }
	order=$(sed -n 's/^order \([0-9]*\):.*/\1/p' <<<"$line")
	[ -n "$order" ] && [[ $token =~ ^[0-9]+$ ]] || { echo "no token"; return 1; }
	txb_wait_for "psql -X -At -d shop -c \"SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
		WHERE l.locktype = 'transactionid' AND NOT l.granted
		  AND l.transactionid::text = ($token % 4294967296)::text AND a.query LIKE '%barrier_wait%'\"" 1 ||
		{ cat "$dir/worker.log"; return 1; }
	echo "worker: blocked on token $token"
	echo "$answer" >&"${PRODUCER[1]}"
	IFS= read -r -t 60 line <&"${PRODUCER[0]}"
	echo "producer: $line"
	wait "$PRODUCER_PID"
	[ "$line" = "COMMIT or ROLLBACK? $answer done" ]
}

echo "== producer.py, answered COMMIT"
produce COMMIT
txb_wait_for "psql -X -At -d shop -c \"SELECT status FROM orders WHERE id = $order\"" shipped ||
	{ cat "$dir/worker.log"; exit 1; }
echo "order $order: shipped"

echo "== producer.py, answered ROLLBACK"
produce ROLLBACK
txb_wait_for "grep -c 'tasks.ship\[.*\] not run' '$dir/worker.log'" 1 ||
	{ cat "$dir/worker.log"; exit 1; }
[ "$(psql -X -At -d shop -c "SELECT count(*) FROM orders WHERE id = $order")" = 0 ]
grep 'not run' "$dir/worker.log"
echo "quickstart: ok"
