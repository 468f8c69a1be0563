#!/usr/bin/env bash
# The quick start (docs/quickstart.md) end to end, its files as the page
# shows them, against the server the docs layer gives it: the Debian
# packages resolve (apt-get -s, on this machine's package lists), the
# extension and the Python package build and install (pip --user into the
# sample's HOME), the role, database and
# table are made, a real Celery worker (Debian's `celery` command, a real
# Redis) blocks on the producer's token and ships the order after COMMIT,
# and does not run the task after ROLLBACK.
. "$TXB_ROOT/docs/samples/lib.sh"

# The reader runs Debian 12's python3 and celery, whatever comes first on
# this machine's PATH.
export PATH="$PG_BINDIR:/usr/bin:$PATH"
here=$TXB_SRC/docs/samples/quickstart
dir=$SAMPLE_DIR
export HOME=$dir/home              # pip --user installs into $HOME/.local
mkdir -p "$HOME"
export USER=txb_quickstart         # the reader's login: database.sh makes a role of it
cleanup_db() {
	local -x PGUSER=postgres
	sample_psql postgres "DROP DATABASE IF EXISTS shop WITH (FORCE)" "DROP ROLE IF EXISTS $USER"
}
cleanup_db
txb_on_exit cleanup_db

echo "== packages.sh, simulated (apt-get -s)"
sed -e '/^sudo apt-get update$/d' -e 's/^sudo apt-get install -y/apt-get install -s/' "$here/packages.sh" | bash >"$dir/apt.log" 2>&1 ||
	sample_fail "apt-get -s install: a package is unknown" "$dir/apt.log"
grep -q 'newly installed' "$dir/apt.log" || sample_fail "apt-get -s install" "$dir/apt.log"

echo "== build.sh, in the writable copy of the tree, for the server under test"
cd "$TXB_SRC"
sed -e 's/^sudo //' -e "s#/usr/lib/postgresql/15/bin/pg_config#$PG_CONFIG#g" "$here/build.sh" |
	bash >"$dir/build.log" 2>&1 || sample_fail build.sh "$dir/build.log"
ls "$HOME"/.local/lib/python3*/site-packages/tx_barrier/celery.py >/dev/null ||
	sample_fail "pip install --user" "$dir/build.log"

echo "== database.sh (sudo -u postgres: PGUSER=postgres)"
sed -e 's/^sudo -u postgres /PGUSER=postgres /' "$here/database.sh" |
	PGUSER=$USER bash || sample_fail database.sh
export PGUSER=$USER

echo "== the worker: celery -A tasks worker --loglevel=INFO"
sample_redis
export BROKER_URL=$REDIS_URL/0
cd "$here"
sample_background worker_pid "$dir/worker.log" celery -A tasks worker --loglevel=INFO --concurrency=1
sample_wait_log "$dir/worker.log" ' ready\.' 3000

# produce ANSWER: runs producer.py, waits until the worker is blocked on its
# token, then answers the prompt with ANSWER.
produce() {
	local answer=$1 line token
	coproc PRODUCER { python3 -u producer.py 2>&1; }
	IFS= read -r -t 60 line <&"${PRODUCER[0]}" || sample_fail "producer.py printed nothing"
	echo "producer: $line"
	token=${line##* token }
	order=$(sed -n 's/^order \([0-9]*\):.*/\1/p' <<<"$line")
	[ -n "$order" ] && [[ $token =~ ^[0-9]+$ ]] || sample_fail "producer.py: no order and token"
	sample_wait_blocked shop "$token"
	echo "worker: blocked in barrier_wait on token $token"
	echo "$answer" >&"${PRODUCER[1]}"
	IFS= read -r -t 60 line <&"${PRODUCER[0]}" || true
	echo "producer: $line"
	wait "$PRODUCER_PID" || sample_fail "producer.py failed"
	[ "$line" = "COMMIT or ROLLBACK? $answer done" ] || sample_fail "producer.py: unexpected '$line'"
}

echo "== producer.py, answered COMMIT"
produce COMMIT
txb_wait_for "psql -X -At -d shop -c \"SELECT status FROM orders WHERE id = $order\"" shipped ||
	sample_fail "order $order not shipped" "$dir/worker.log"
grep "shipped order $order" "$dir/worker.log"

echo "== producer.py, answered ROLLBACK"
produce ROLLBACK
sample_wait_log "$dir/worker.log" 'Task tasks\.ship\[.*\] not run'
[ "$(sample_psql shop "SELECT count(*) FROM orders WHERE id = $order")" = 0 ] ||
	sample_fail "the rolled-back order exists"
[ "$(sample_psql shop "SELECT count(*) FROM orders WHERE status = 'shipped'")" = 1 ] ||
	sample_fail "a second order was shipped"
grep 'not run' "$dir/worker.log"
echo "quickstart: ok"
