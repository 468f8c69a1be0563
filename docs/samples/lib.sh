# Shell functions shared by the guides' samples (docs/samples/<guide>/run.sh).
# Source it first thing in run.sh:
#
#     . "$TXB_ROOT/docs/samples/lib.sh"
#
# It sources tools/cluster.sh (servers, standbys, Redis, waiting for a
# condition) and adds what the samples have in common: databases that are
# dropped again, the Python package installed into the sample's scratch
# directory, background processes stopped at exit, and waiting for a line
# in a log.  Every resource is released when run.sh exits, pass or fail.
#
# run.sh is given PGHOST/PGPORT/PGUSER (a running server with the extension
# installed), TXB_ROOT (the tree), TXB_SRC (a writable copy of it) and
# TXB_SAMPLE_DIR (a scratch directory), and runs as root.

set -euo pipefail
. "$TXB_ROOT/tools/cluster.sh"

# Debian's python3, which has Celery, Django, psycopg2 and psycopg 3.
PY=/usr/bin/python3
SAMPLE_DIR=$TXB_SAMPLE_DIR
export PY SAMPLE_DIR

# sample_fail MESSAGE [FILE...]: prints the files (logs) and the message,
# and exits 1.
sample_fail() {
	local msg=$1 f
	shift
	for f in "$@"; do
		[ -f "$f" ] && { echo "---- $f"; tail -n 60 "$f"; }
	done
	echo "FAILED: $msg" >&2
	exit 1
}

# sample_psql DB SQL...: runs each SQL string with psql on DB, unaligned,
# tuples only, stopping at the first error.
sample_psql() {
	local db=$1 args=(-c "SET client_min_messages = warning") s
	shift
	for s in "$@"; do args+=(-c "$s"); done
	psql -X -At -q -v ON_ERROR_STOP=1 -d "$db" "${args[@]}"
}

# sample_db NAME [noext]: a new, empty database NAME (dropped at exit),
# with CREATE EXTENSION tx_barrier unless "noext" is given.
sample_db() {
	local db=$1
	sample_psql postgres "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" \
		"CREATE DATABASE \"$db\""
	txb_on_exit "psql -X -q -d postgres -c 'DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)' >/dev/null 2>&1"
	if [ "${2:-}" != noext ]; then
		sample_psql "$db" "CREATE EXTENSION tx_barrier"
	fi
}

# sample_role NAME [OPTIONS]: a login role (dropped at exit, after the
# databases the sample made), e.g. sample_role shop_app NOSUPERUSER CREATEDB.
sample_role() {
	local role=$1
	shift
	sample_psql postgres "DROP ROLE IF EXISTS \"$role\"" "CREATE ROLE \"$role\" LOGIN $*"
	# Registered before the databases that depend on it are dropped (the
	# exit runs these last-registered-first), so it runs after them.
	TXB_ON_EXIT=("psql -X -q -d postgres -c 'DROP ROLE IF EXISTS \"$role\"' >/dev/null 2>&1" "${TXB_ON_EXIT[@]}")
	trap txb_run_on_exit EXIT
}

# sample_python_package: installs client/python (from the writable copy)
# with pip into $SAMPLE_DIR/site, as the package's README says, and puts it
# on PYTHONPATH.
sample_python_package() {
	local site=$SAMPLE_DIR/site
	"$PY" -m pip install --quiet --no-build-isolation --no-deps \
		--target "$site" "$TXB_SRC/client/python" >"$SAMPLE_DIR/pip.log" 2>&1 ||
		sample_fail "pip install ./client/python" "$SAMPLE_DIR/pip.log"
	export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
}

# sample_redis: a throwaway Redis (txb_redis_start), stopped at exit;
# exports REDIS_URL (redis://127.0.0.1:PORT) and REDIS_PORT.
sample_redis() {
	local sample_redis_pid
	txb_redis_start "$SAMPLE_DIR/redis" REDIS_PORT sample_redis_pid || sample_fail "redis did not start"
	txb_on_exit "kill $sample_redis_pid 2>/dev/null; wait $sample_redis_pid 2>/dev/null"
	REDIS_URL=redis://127.0.0.1:$REDIS_PORT
	export REDIS_URL REDIS_PORT
}

# sample_stop_group PID: stops the process group PID leads (TERM, then KILL
# after 10 s) and reaps it.
sample_stop_group() {
	local pid=$1
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM -- "-$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# sample_background VAR LOG COMMAND...: starts COMMAND in a process group of
# its own, output to LOG, stores its pid in VAR, and stops it at exit.
sample_background() {
	local var=$1 log=$2 pid
	shift 2
	setsid "$@" >"$log" 2>&1 &
	pid=$!
	printf -v "$var" '%s' "$pid"
	txb_on_exit "sample_stop_group $pid"
}

# sample_wait_log FILE REGEX [TRIES]: waits until a line of FILE matches
# the extended REGEX (every 20 ms, 30 s by default); fails with the file
# otherwise.
sample_wait_log() {
	local file=$1 re=$2
	txb_wait_for "grep -Eq -- $(printf '%q' "$re") $(printf '%q' "$file") && echo found" found "${3:-1500}" ||
		sample_fail "no line matching '$re' in $file" "$file"
}

# sample_celery_worker LOG DIR APP [OPTIONS...]: a real Celery worker,
# `python3 -m celery -A APP worker`, started in DIR, stopped at exit;
# returns once it is ready.
sample_celery_worker() {
	local log=$1 dir=$2 app=$3 old=$PWD
	shift 3
	cd "$dir"
	sample_background CELERY_WORKER_PID "$log" \
		"$PY" -m celery -A "$app" worker --loglevel=INFO --concurrency=1 \
		--without-gossip --without-mingle "$@"
	cd "$old"
	sample_wait_log "$log" ' ready\.' 3000
}

# sample_wait_blocked DB TOKEN: waits until a session of database DB is
# blocked in barrier_wait on TOKEN's transaction (an ungranted
# transactionid lock on its xid).
sample_wait_blocked() {
	local db=$1 token=$2
	txb_wait_for "psql -X -At -d $db -c \"SELECT count(*) > 0 FROM pg_locks l
		JOIN pg_stat_activity a USING (pid)
		WHERE l.locktype = 'transactionid' AND NOT l.granted
		  AND l.transactionid::text = (($token)::numeric % 4294967296)::text
		  AND a.query LIKE '%barrier_wait%'\"" t ||
		sample_fail "no session blocked in barrier_wait on $token"
}

# sample_trixie_python: the Debian 13 (trixie) root with SQLAlchemy 2.0,
# psycopg 3.2, Celery 5.5, RQ 2, FastAPI and uvicorn, for samples that need
# newer Python packages than Debian 12's (txb_trixie_python_root: made once
# with mmdebstrap, cached).  Sets TRIXIE_ROOT and the command prefix
# TRIXIE_RUN:
#
#     "${TRIXIE_RUN[@]}" DIR COMMAND...
#
# runs COMMAND in the root, in DIR (seen there as /srv), with
# $SAMPLE_DIR seen as /mnt (so the package sample_python_package installed
# is PYTHONPATH=/mnt/site there).  The mounts live in a mount namespace of
# the command's own: nothing is written into the cached root.  The root
# shares the network: servers are reached on 127.0.0.1.
sample_trixie_python() {
	txb_trixie_python_root TRIXIE_ROOT "$SAMPLE_DIR/mmdebstrap.log" ||
		sample_fail "no Debian 13 root" "$SAMPLE_DIR/mmdebstrap.log"
	# shellcheck disable=SC2016
	TRIXIE_RUN=(unshare --mount --propagation private /bin/sh -c '
		root=$1 scratch=$2 dir=$3
		shift 3
		mount --rbind /dev "$root/dev" && mount --bind /proc "$root/proc" &&
			mount --bind "$scratch" "$root/mnt" && mount --bind "$dir" "$root/srv" &&
			exec chroot "$root" /bin/sh -c "cd /srv && exec \"\$@\"" sh "$@"' \
		sh "$TRIXIE_ROOT" "$SAMPLE_DIR")
}
