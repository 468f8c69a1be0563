# Shell functions to run a throwaway PostgreSQL 15 cluster for the demo,
# the tests and the benchmarks.  Source this file; it defines no globals
# besides PG_BINDIR.  The server refuses to run as root, so when we are root
# it runs as the unprivileged 'postgres' user.

PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}

# Runs a command as the server's owner.
txb_as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# Prints a TCP port on 127.0.0.1 that nothing listens on.
txb_free_port() {
	local port
	for _ in $(seq 1 200); do
		port=$(( (RANDOM % 20000) + 30000 ))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	echo "txb_free_port: no free port found" >&2
	return 1
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
	txb_as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
		-t 60 start >/dev/null || {
		cat "$dir/server.log" >&2
		return 1
	}
}

# txb_cluster_stop DIR: stops the cluster in DIR/data, if it runs.
txb_cluster_stop() {
	local dir=$1
	if [ -f "$dir/data/postmaster.pid" ]; then
		txb_as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -m fast -w -t 60 \
			stop >/dev/null 2>&1 || true
	fi
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
