# The shell helper library of tx_barrier's demo, tests and benchmarks:
# which server to use, throwaway clusters and standbys, scratch directories
# with their cleanup, and waiting until a session is blocked.  Source it;
# the demo, every layer and every benchmark call these instead of writing
# their own.
#
# The server comes from PG_CONFIG (default: Debian's PostgreSQL 15); it sets
# PG_BINDIR and TXB_PG_MAJOR.  The server refuses to run as root, so when we
# are root it runs as the unprivileged 'postgres' user.

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PG_BINDIR=$("$PG_CONFIG" --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
TXB_PG_MAJOR=$("$PG_CONFIG" --version 2>/dev/null | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
export PG_CONFIG PG_BINDIR TXB_PG_MAJOR

# Runs a command as the server's owner.
txb_as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# Prints a TCP port on 127.0.0.1 that nothing listens on, reserved for the
# calling shell.  Two things could take it before the caller's server binds
# it: the kernel, for the local end of an outgoing connection (so the port
# is below the ephemeral range, net.ipv4.ip_local_port_range), and another
# run on this machine (so it is reserved, as PostgreSQL::Test::Cluster
# reserves its ports: a file TXB_PORT_DIR/PORT.rsv, default /tmp/txb-ports,
# holding the pid of the shell that took it, free again once that shell is
# gone).
txb_free_port() {
	local low port dir=${TXB_PORT_DIR:-/tmp/txb-ports}
	low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null) || low=32768
	[ "${low:-0}" -gt 16000 ] 2>/dev/null || low=32768
	mkdir -p "$dir" && chmod 1777 "$dir" 2>/dev/null
	for _ in $(seq 1 400); do
		port=$((15000 + RANDOM % (low - 15000)))
		if txb_reserve_port "$dir" "$port" &&
			! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	echo "txb_free_port: no free port found" >&2
	return 1
}
# txb_reserve_port DIR PORT: succeeds if PORT was not reserved by a live
# process and is now reserved for this shell ($$: in $(...), the caller's).
txb_reserve_port() {
	local file="$1/$2.rsv"
	(
		flock 9 || exit 1
		read -r holder <&9 || holder=0
		if [ "${holder:-0}" -gt 0 ] 2>/dev/null && kill -0 "$holder" 2>/dev/null; then
			exit 1
		fi
		printf '%10d\n' "$$" >"$file"
	) 9<>"$file" 2>/dev/null
}

# Commands run, last registered first, when the shell exits.
TXB_ON_EXIT=()
txb_run_on_exit() {
	local i
	for ((i = ${#TXB_ON_EXIT[@]} - 1; i >= 0; i--)); do
		eval "${TXB_ON_EXIT[$i]}" || true
	done
	TXB_ON_EXIT=()
}
# txb_on_exit 'COMMAND': run COMMAND when the shell exits (one EXIT trap
# for all of them; a script that sets its own trap calls txb_run_on_exit).
txb_on_exit() {
	TXB_ON_EXIT+=("$1")
	trap txb_run_on_exit EXIT
}

# txb_scratch VAR NAME: makes a new directory /tmp/txb-NAME.XXXXXX, readable
# by the server's owner, stores its path in the variable named VAR, and
# removes it (after stopping any cluster in it) when the shell exits,
# unless TXB_KEEP is set.  Not for $(...): the exit would be the subshell's.
txb_scratch() {
	local var=$1 dir
	dir=$(mktemp -d "/tmp/txb-$2.XXXXXX") || return 1
	chmod 755 "$dir"
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$dir"
	fi
	txb_on_exit "txb_scratch_remove '$dir'"
	printf -v "$var" '%s' "$dir"
}
txb_scratch_remove() {
	local d
	for d in "$1"/*/data "$1"/data; do
		[ -f "$d/postmaster.pid" ] && txb_cluster_stop "$(dirname "$d")"
	done
	if [ -n "${TXB_KEEP:-}" ]; then
		echo "kept $1" >&2
	else
		rm -rf "$1"
	fi
}

# txb_server_conf DIR PORT [EXTRA_CONF_LINE...]: the settings every
# throwaway server here gets, appended to DIR/data/postgresql.conf.
txb_server_conf() {
	local dir=$1 port=$2
	shift 2
	{
		echo "port = $port"
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$dir'"
		echo "max_prepared_transactions = 20"
		echo "max_connections = 200"
		for line in "$@"; do
			echo "$line"
		done
	} | txb_as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
}

# txb_cluster_start DIR PORT [EXTRA_CONF_LINE...]
# Creates a cluster in DIR/data (DIR must exist), listening on 127.0.0.1:PORT
# and on a Unix socket in DIR, and starts it.  Authentication is 'trust':
# the cluster is reachable only from this machine and lives for one run.
txb_cluster_start() {
	local dir=$1 port=$2
	shift 2
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$dir"
	fi
	txb_as_owner "$PG_BINDIR/initdb" -D "$dir/data" -U postgres -A trust \
		-E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		return 1
	}
	txb_server_conf "$dir" "$port" "$@"
	txb_cluster_run "$dir"
}

# txb_cluster_start_free DIR VAR [EXTRA_CONF_LINE...]: txb_cluster_start on
# a free port, stored in the variable named VAR.  Another process can take
# the port between the check and the server's bind: then it tries another.
txb_cluster_start_free() {
	local dir=$1 var=$2
	shift 2
	_txb_on_free_port "$var" "$dir" _txb_cluster_fresh_start "$dir" "$@"
}
_txb_cluster_fresh_start() {	# PORT DIR CONF...
	local port=$1 dir=$2
	shift 2
	rm -rf "$dir/data"
	txb_cluster_start "$dir" "$port" "$@"
}

# _txb_on_free_port VAR DIR START ARGS...: runs START PORT ARGS... for a
# free port until it succeeds (its errors in DIR/start.err) and stores the
# port in the variable named VAR; another port is tried, up to five, when
# the server found the one picked taken ("Address already in use").
_txb_on_free_port() {
	local var=$1 dir=$2 start=$3 try free
	shift 3
	for try in 1 2 3 4 5; do
		free=$(txb_free_port) || return 1
		if "$start" "$free" "$@" 2>"$dir/start.err"; then
			printf -v "$var" '%s' "$free"
			return 0
		fi
		grep -q 'Address already in use' "$dir/start.err" || break
		echo "port $free was taken meanwhile: trying another (attempt $try)" >&2
	done
	cat "$dir/start.err" >&2
	return 1
}

# txb_serve_free PORT_VAR PID_VAR LOG START READY: starts a throwaway
# server on a free port of 127.0.0.1 in the background of the calling
# shell: runs the function START with the port (it must exec the server,
# its output in LOG) and returns once the function READY succeeds for that
# port, storing the port and the server's pid in the named variables.
# Another port is tried when the one picked was taken meanwhile (LOG says
# "address already in use"); gives up after 30 s or when the server exits.
# Not for $(...).
txb_serve_free() {
	local port_var=$1 pid_var=$2 log=$3 start=$4 ready=$5 try free pid
	for try in 1 2 3 4 5; do
		free=$(txb_free_port) || return 1
		"$start" "$free" &
		pid=$!
		for _ in $(seq 1 300); do
			"$ready" "$free" && break
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if "$ready" "$free"; then
			printf -v "$port_var" '%s' "$free"
			printf -v "$pid_var" '%s' "$pid"
			return 0
		fi
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		grep -qi 'address already in use' "$log" || break
		echo "$start: port $free was taken meanwhile: trying another (attempt $try)" >&2
	done
	cat "$log" >&2
	return 1
}

# txb_stop_server PID: stops a server this shell started in the background
# (txb_serve_free's PID_VAR): SIGTERM, then reaps it.  Nothing if PID is
# empty or gone.
txb_stop_server() {
	[ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
	kill -TERM "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# txb_redis_start DIR PORT_VAR PID_VAR: a throwaway redis-server (no
# persistence), its files in DIR, by txb_serve_free; ready once it answers
# PING.  Not for $(...).
txb_redis_start() {
	mkdir -p "$1"
	_txb_redis_dir=$1
	txb_serve_free "$2" "$3" "$1/redis.log" _txb_redis_run _txb_redis_ready
}
_txb_redis_run() {
	exec redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no \
		--dir "$_txb_redis_dir" --logfile "$_txb_redis_dir/redis.log" --daemonize no
}
_txb_redis_ready() {
	[ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ]
}

# txb_npm_ci DIR LOG: the Node client's packages in DIR/node_modules,
# exactly as DIR/package-lock.json locks them (npm ci, taking what npm's
# cache has from there), npm's output in LOG, printed if it fails.
txb_npm_ci() {
	if (cd "$1" && npm ci --no-audit --no-fund --prefer-offline) >"$2" 2>&1 &&
		[ -d "$1/node_modules/bullmq" ] && [ -d "$1/node_modules/pg" ]; then
		return 0
	fi
	cat "$2" >&2
	return 1
}

# txb_etcd_start DIR PORT_VAR PID_VAR: a throwaway one-member etcd (the
# DCS of a Patroni cluster), its data in DIR, by txb_serve_free (the port
# stored is the client port); ready once it reports itself healthy.  Not
# for $(...).
txb_etcd_start() {
	mkdir -p "$1"
	_txb_etcd_dir=$1
	txb_serve_free "$2" "$3" "$1/etcd.log" _txb_etcd_run _txb_etcd_ready
}
_txb_etcd_run() {
	local peer
	peer=$(txb_free_port) || exit 1
	rm -rf "$_txb_etcd_dir/data"
	exec etcd --name txb --data-dir "$_txb_etcd_dir/data" \
		--listen-client-urls "http://127.0.0.1:$1" \
		--advertise-client-urls "http://127.0.0.1:$1" \
		--listen-peer-urls "http://127.0.0.1:$peer" \
		--initial-advertise-peer-urls "http://127.0.0.1:$peer" \
		--initial-cluster "txb=http://127.0.0.1:$peer" >"$_txb_etcd_dir/etcd.log" 2>&1
}
_txb_etcd_ready() {
	curl -sf "http://127.0.0.1:$1/health" 2>/dev/null | grep -q '"health":"true"'
}

# txb_patroni_member DIR NAME ETCD_PORT PG_PORT API_PORT [PARAM=VALUE...]
# Writes DIR/NAME.yml, the configuration of one Patroni member, and starts
# the member as the server's owner in the background of the calling shell
# (log in DIR/NAME.log).  The configuration is the Patroni guide's
# (docs/samples/patroni/patroni.yml) with this member's name, ports (etcd v3
# on 127.0.0.1:ETCD_PORT, PostgreSQL of $PG_BINDIR on PG_PORT, the REST API
# on API_PORT) and directories (data in DIR/NAME), Patroni's loop shortened
# to one second, and each bootstrap PARAM=VALUE set or added.
txb_patroni_member() {
	local dir=$1 name=$2 etcd=$3 pgport=$4 apiport=$5 kv sed_params=()
	shift 5
	mkdir -p "$dir/$name.sock"
	chown postgres: "$dir" "$dir/$name.sock" 2>/dev/null
	for kv in "$@"; do
		sed_params+=(-e "/^      parameters:\$/a\\        ${kv%%=*}: \"${kv#*=}\"")
	done
	sed -e "s|^name: pg1\$|name: $name|" \
		-e "s|127\.0\.0\.1:2379|127.0.0.1:$etcd|" \
		-e "s|127\.0\.0\.1:8008|127.0.0.1:$apiport|" \
		-e "s|127\.0\.0\.1:5432|127.0.0.1:$pgport|" \
		-e "s|/var/lib/postgresql/15/pg1|$dir/$name|" \
		-e "s|/usr/lib/postgresql/15/bin|$PG_BINDIR|" \
		-e "s|/var/run/postgresql|$dir/$name.sock|" \
		-e "s|^    ttl: 30\$|    ttl: 20|" \
		-e "s|^    loop_wait: 10\$|    loop_wait: 1|" \
		-e "s|^    retry_timeout: 10\$|    retry_timeout: 5|" \
		"${sed_params[@]}" \
		"$TXB_ROOT/docs/samples/patroni/patroni.yml" >"$dir/$name.yml" || return 1
	chown postgres: "$dir/$name.yml" 2>/dev/null
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- patroni "$dir/$name.yml" >"$dir/$name.log" 2>&1 &
	else
		patroni "$dir/$name.yml" >"$dir/$name.log" 2>&1 &
	fi
}

# txb_cluster_run DIR: starts the existing cluster in DIR/data.
txb_cluster_run() {
	local dir=$1
	txb_as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
		-t 60 start >/dev/null || {
		cat "$dir/server.log" >&2
		return 1
	}
}

# txb_standby_start PRIMARY_CONNINFO DIR PORT [EXTRA_CONF_LINE...]
# Makes DIR/data a streaming hot standby of the primary (pg_basebackup -R),
# starts it, and returns once it accepts read-only connections.
txb_standby_start() {
	local primary=$1 dir=$2 port=$3
	shift 3
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$dir"
	fi
	txb_as_owner "$PG_BINDIR/pg_basebackup" -d "$primary" -D "$dir/data" \
		-R -X stream -c fast >"$dir/basebackup.log" 2>&1 || {
		cat "$dir/basebackup.log" >&2
		return 1
	}
	# The primary's port and socket lines are overridden by later ones.
	txb_server_conf "$dir" "$port" "hot_standby = on" "$@"
	txb_cluster_run "$dir" || return 1
	txb_wait_for "$PG_BINDIR/psql -X -At -h $dir -p $port -U postgres -d postgres -c 'SELECT pg_is_in_recovery()'" t
}

# txb_standby_start_free PRIMARY_CONNINFO DIR VAR [EXTRA_CONF_LINE...]:
# txb_standby_start on a free port, stored in the variable named VAR;
# another port (and a new base backup) if the one picked was taken
# meanwhile.
txb_standby_start_free() {
	local primary=$1 dir=$2 var=$3
	shift 3
	_txb_on_free_port "$var" "$dir" _txb_standby_fresh_start "$primary" "$dir" "$@"
}
_txb_standby_fresh_start() {	# PORT PRIMARY DIR CONF...
	local port=$1 primary=$2 dir=$3
	shift 3
	txb_cluster_stop "$dir"
	rm -rf "$dir/data" "$dir/server.log"
	txb_standby_start "$primary" "$dir" "$port" "$@"
}

# txb_stop_process_groups PID...: stops each process group led by a PID
# (a worker started with setsid and its pool): SIGTERM to all of them for a
# warm shutdown, then SIGKILL to any group still there after 10 s.
txb_stop_process_groups() {
	local pid
	for pid in "$@"; do
		kill -TERM -- "-$pid" 2>/dev/null
	done
	for pid in "$@"; do
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
}

# txb_cluster_stop DIR: stops the cluster in DIR/data, if it runs.
txb_cluster_stop() {
	local dir=$1
	if [ -f "$dir/data/postmaster.pid" ]; then
		txb_as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -m fast -w -t 60 \
			stop >/dev/null 2>&1 || true
	fi
}

# txb_wait_for COMMAND EXPECTED [TRIES]: runs COMMAND (a shell string)
# until it prints EXPECTED, every 20 ms, at most TRIES times (default
# 6000, two minutes of sleeps: a guard against a hang that no loaded
# machine reaches, not a speed it must meet).  Returns non-zero if it never
# did.
txb_wait_for() {
	local cmd=$1 want=$2 tries=${3:-6000} got
	for _ in $(seq 1 "$tries"); do
		got=$(eval "$cmd" 2>/dev/null) || got=
		[ "$got" = "$want" ] && return 0
		sleep 0.02
	done
	echo "txb_wait_for: '$cmd' never printed '$want' (last: '$got')" >&2
	return 1
}

# txb_lock_waiting APPNAME [TOKEN] [PSQL_ARGS...]: prints t if a session
# whose application_name is APPNAME waits on an ungranted transactionid
# lock (of TOKEN's xid, if TOKEN is not empty), else f.  For clients whose
# statement text is not known (txb, programs linked with the C library).
txb_lock_waiting() {
	local app=$1 token=${2:-} xid_cond=
	shift 2 2>/dev/null || shift $#
	if [ -n "$token" ]; then
		xid_cond="AND l.transactionid::text = (($token)::numeric % 4294967296)::text"
	fi
	"$PG_BINDIR/psql" -X -At "$@" -c "SELECT count(*) > 0 FROM pg_locks l
		JOIN pg_stat_activity a USING (pid)
		WHERE a.application_name = '$app' AND l.locktype = 'transactionid'
		  AND NOT l.granted $xid_cond"
}

# txb_wait_blocked [PSQL_ARGS...]: waits until a session of the server that
# psql reaches with PSQL_ARGS is blocked in barrier_wait: on a primary, an
# ungranted transactionid lock; on a standby, the standby wait's event.
# Prints nothing; returns non-zero after 30 s.
txb_wait_blocked() {
	local q="SELECT count(*) > 0 FROM pg_stat_activity
		WHERE pid <> pg_backend_pid() AND query LIKE '%barrier_wait%'
		  AND ((wait_event_type = 'Lock' AND wait_event = 'transactionid')
		    OR wait_event IN ('Extension', 'TxBarrierStandbyWait', 'WaitForWalReplay'))"
	txb_wait_for "$PG_BINDIR/psql -X -At $(printf '%q ' "$@") -c \"$q\"" t
}

# txb_install_barrier DB: makes the barrier functions callable, unqualified,
# in database DB.  By default CREATE EXTENSION tx_barrier; when
# TXB_INSTALL_SQL names an install script (the portable edition,
# portable/tx_barrier_portable.sql), that script runs instead, into schema
# tx_barrier, which then goes on DB's search_path.  Client test layers call
# this so that they can run against either edition.
txb_install_barrier() {
	local db=$1
	if [ -z "${TXB_INSTALL_SQL:-}" ]; then
		psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c 'CREATE EXTENSION tx_barrier'
		return
	fi
	psql -X -q -v ON_ERROR_STOP=1 -d "$db" -v schema=tx_barrier \
		-f "$TXB_INSTALL_SQL" &&
		psql -X -q -v ON_ERROR_STOP=1 -d "$db" \
			-c "ALTER DATABASE \"$db\" SET search_path = \"\$user\", public, tx_barrier" \
			-c "GRANT USAGE ON SCHEMA tx_barrier TO PUBLIC"
}

# txb_preloaded_start DIR PORT_VAR DB [SQL_FILE]: a second cluster in DIR
# with tx_barrier in shared_preload_libraries (barrier_wait_any() sleeps
# only there: the shared waiters' tests), on a free port of 127.0.0.1
# stored in the variable named PORT_VAR, and on it database DB with CREATE
# EXTENSION tx_barrier and SQL_FILE run.  Stop it with txb_cluster_stop DIR.
txb_preloaded_start() {
	local dir=$1 db=$3 sql=${4:-} _txb_pre_port
	mkdir -p "$dir"
	txb_cluster_start_free "$dir" _txb_pre_port \
		"shared_preload_libraries = 'tx_barrier'" || return 1
	printf -v "$2" '%s' "$_txb_pre_port"
	PGHOST=127.0.0.1 PGPORT=$_txb_pre_port psql -X -q -v ON_ERROR_STOP=1 \
		-d postgres -c "CREATE DATABASE \"$db\"" &&
		PGHOST=127.0.0.1 PGPORT=$_txb_pre_port psql -X -q -v ON_ERROR_STOP=1 \
			-d "$db" -c 'CREATE EXTENSION tx_barrier' ${sql:+-f "$sql"}
}

# txb_install_portable_off_path DB SCRIPT: (re)creates database DB with the
# portable edition (its install SCRIPT) in schema txb_hidden, usable by
# every role but not on DB's search_path: what the clients' errors for a
# schema off the search_path are tested on.
txb_install_portable_off_path() {
	psql -X -q -v ON_ERROR_STOP=1 -d postgres \
		-c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" -c "CREATE DATABASE \"$1\"" &&
		psql -X -q -v ON_ERROR_STOP=1 -d "$1" -v schema=txb_hidden -f "$2" >/dev/null 2>&1 &&
		psql -X -q -v ON_ERROR_STOP=1 -d "$1" -c "GRANT USAGE ON SCHEMA txb_hidden TO PUBLIC"
}

# txb_pgbouncer_start DIR DB PORT_VAR PID_VAR: a throwaway PgBouncer in
# transaction pooling mode (pool of 4 server connections) in front of
# database DB of the server libpq's PGHOST/PGPORT name, listening on a free
# port of 127.0.0.1 (trust, user postgres; by txb_serve_free, so another
# port is tried if the one picked was taken), its files in DIR; run as the
# server's owner (it refuses root) in the background of the calling shell.
# Stores the port and the pid in the named variables and returns once it
# answers.  Stop it with txb_pgbouncer_stop DIR PID (runuser does not pass
# signals on).  Not for $(...).
txb_pgbouncer_start() {
	mkdir -p "$1"
	_txb_bouncer_dir=$1 _txb_bouncer_db=$2
	echo '"postgres" ""' >"$1/userlist.txt"
	txb_serve_free "$3" "$4" "$1/pgbouncer.log" _txb_bouncer_run _txb_bouncer_ready || {
		txb_pgbouncer_stop "$1"
		return 1
	}
}
_txb_bouncer_run() {
	local dir=$_txb_bouncer_dir
	cat >"$dir/pgbouncer.ini" <<EOT
[databases]
$_txb_bouncer_db = host=${PGHOST:-localhost} port=${PGPORT:-5432} dbname=$_txb_bouncer_db pool_size=4

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $1
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = 200
default_pool_size = 4
query_wait_timeout = 60
server_check_delay = 0
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOT
	: >"$dir/pgbouncer.log"
	[ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir"
	if [ "$(id -u)" -eq 0 ]; then
		exec runuser -u postgres -- /usr/sbin/pgbouncer "$dir/pgbouncer.ini" >"$dir/pgbouncer.out" 2>&1
	fi
	exec /usr/sbin/pgbouncer "$dir/pgbouncer.ini" >"$dir/pgbouncer.out" 2>&1
}
_txb_bouncer_ready() {
	PGMAXPROTOCOLVERSION=3.0 psql -X -Atq -h 127.0.0.1 -p "$1" -U postgres \
		-d "$_txb_bouncer_db" -c 'SELECT 1' >/dev/null 2>&1
}
txb_pgbouncer_stop() {	# DIR [PID]: PID, txb_pgbouncer_start's, is reaped
	if [ -s "$1/pgbouncer.pid" ]; then
		kill -TERM "$(cat "$1/pgbouncer.pid")" 2>/dev/null
		rm -f "$1/pgbouncer.pid"
	fi
	# runuser does not pass signals on: the pid file's process is the
	# server, PID the runuser in front of it.
	txb_stop_server "${2:-}"
}

# The clean Debian 12 root the package layer installs the packages into
# (tools/layers/80-package.sh): minbase with PostgreSQL 15 and what the
# installed-package checks need, no cluster made.
TXB_PACKAGE_ROOT_PACKAGES=postgresql-15,make,pkgconf,gcc,libc6-dev,libpq-dev,python3-psycopg2
# txb_package_root VAR LOG: stores in the variable named VAR the path of a
# tarball of that root, cached in TXB_CACHE (default /var/cache/tx_barrier)
# under a name that carries a digest of the package list, making it first
# if needed (mmdebstrap's output in LOG).  Not for $(...); VAR must not
# begin with _txb_.
txb_package_root() {
	local _txb_var=$1 _txb_log=$2 _txb_cache=${TXB_CACHE:-/var/cache/tx_barrier} _txb_tar
	_txb_tar="$_txb_cache/bookworm-pg15-$(echo "$TXB_PACKAGE_ROOT_PACKAGES" | md5sum | cut -c1-8).tar"
	mkdir -p "$_txb_cache" || return 1
	(
		flock 9
		[ -f "$_txb_tar" ] && exit 0
		# Debian's tools, not an interpreter first on the caller's PATH.
		env PATH=/usr/sbin:/usr/bin:/sbin:/bin mmdebstrap --variant=minbase --format=tar \
			--include="$TXB_PACKAGE_ROOT_PACKAGES" \
			--aptopt='APT::Install-Recommends "false"' \
			--customize-hook='echo "create_main_cluster = false" >>"$1/etc/postgresql-common/createcluster.conf"' \
			bookworm "$_txb_tar.tmp" && mv "$_txb_tar.tmp" "$_txb_tar" &&
			find "$_txb_cache" -maxdepth 1 -name 'bookworm-pg15-*.tar' ! -path "$_txb_tar" -delete
	) 9>"$_txb_cache/.lock" >"$_txb_log" 2>&1 || return 1
	printf -v "$_txb_var" '%s' "$_txb_tar"
}

# txb_trixie_root VAR NAME PACKAGES CHECK LOG: a Debian 13 (trixie) root
# with the comma-separated PACKAGES, made once with mmdebstrap (minbase) and
# cached in TXB_CACHE (default /var/cache/tx_barrier) as trixie-NAME-DIGEST,
# where DIGEST is that of the package list, so a new list makes a new root
# once and a root in use by another run is never replaced under it.
# Stores the root's path in the variable named VAR, making it first (under
# a lock) if CHECK, a file inside it, is not there; mmdebstrap's output
# goes to LOG, printed if it fails.  Not for $(...); VAR must not begin
# with _txb_.
txb_trixie_root() {
	local _txb_var=$1 _txb_name=$2 _txb_pkgs=$3 _txb_check=$4 _txb_log=$5 _txb_root
	_txb_root=${TXB_CACHE:-/var/cache/tx_barrier}/trixie-$_txb_name-$(echo "$_txb_pkgs" | md5sum | cut -c1-8)
	txb_trixie_root_at "$_txb_root" "$_txb_pkgs" "$_txb_check" "$_txb_log" || return 1
	printf -v "$_txb_var" '%s' "$_txb_root"
}
# txb_trixie_root_at DIR PACKAGES CHECK LOG: makes the root in DIR if
# CHECK is not there (what txb_trixie_root does, at a path of its own).
txb_trixie_root_at() {
	local root=$1 pkgs=$2 check=$3 log=$4
	mkdir -p "$(dirname "$root")" || return 1
	(
		flock 9
		if [ ! -e "$root$check" ]; then
			rm -rf "$root.new"
			mmdebstrap --quiet --variant=minbase --include="$pkgs" \
				trixie "$root.new" >"$log" 2>&1 &&
				[ -e "$root.new$check" ] && mv "$root.new" "$root" || {
				cat "$log"
				rm -rf "$root.new"
				exit 1
			}
		fi
	) 9>"$root.lock"
}

# The Debian 13 root the Python tests and samples run newer Celery,
# Django, SQLAlchemy 2.0, psycopg 3.2, RQ 2 and FastAPI in: the packages of
# TXB_TRIXIE_PYTHON_PACKAGES.
TXB_TRIXIE_PYTHON_PACKAGES=python3-celery,python3-django,python3-psycopg2,python3-psycopg,python3-redis,python3-sqlalchemy,python3-greenlet,python3-asyncpg,python3-rq,python3-fastapi,python3-httpx,python3-uvicorn
# txb_trixie_python_root VAR LOG: txb_trixie_root of those packages (name
# python, checked by its python3); TXB_TRIXIE_ROOT names another path.
txb_trixie_python_root() {
	if [ -n "${TXB_TRIXIE_ROOT:-}" ]; then
		txb_trixie_root_at "$TXB_TRIXIE_ROOT" "$TXB_TRIXIE_PYTHON_PACKAGES" \
			/usr/bin/python3 "$2" || return 1
		printf -v "$1" '%s' "$TXB_TRIXIE_ROOT"
		return
	fi
	txb_trixie_root "$1" python "$TXB_TRIXIE_PYTHON_PACKAGES" /usr/bin/python3 "$2"
}

# The Debian 13 root of the Ruby tests and samples (Ruby 3.3, Sidekiq 7,
# Active Record, Active Job and Rails 7.2, pg 1.5).
TXB_TRIXIE_RUBY_PACKAGES=ruby,ruby-pg,ruby-sidekiq,ruby-activerecord,ruby-activejob,ruby-minitest,ruby-railties
# txb_trixie_ruby_root VAR LOG: txb_trixie_root of those packages (name
# ruby, checked by its sidekiq).
txb_trixie_ruby_root() {
	txb_trixie_root "$1" ruby "$TXB_TRIXIE_RUBY_PACKAGES" /usr/bin/sidekiq "$2"
}
