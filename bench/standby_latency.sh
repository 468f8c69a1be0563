#!/usr/bin/env bash
# Standby wake latency by PostgreSQL major: how soon a waiter on a hot
# standby learns that the primary's transaction committed, measured from
# the producer's COMMIT acknowledgement on the primary, beside a 1 ms
# pg_xact_status() poll loop on the same standby, in one run per major.
#
# Before 19 a standby waiter learns of replay by polling (one poller for all
# when preloaded, every 1 ms); from 19 the startup process wakes it.  Both
# servers of each pair preload tx_barrier, as README recommends for standbys
# that serve waiters.
#
#   bench/standby_latency.sh                 15 and 19
#   TXB_BENCH_MAJORS="15 17 19" bench/standby_latency.sh
#
# Knobs: TXB_BENCH_WAKE_ITERS (per round and method, default 300),
# TXB_BENCH_WAKE_ROUNDS (default 3).  Run as root; majors other than the
# host's 15 come from tools/pg-build.sh (cached) or TXB_PG_CONFIG_<major>.
set -euo pipefail

TXB_ROOT=$(cd "$(dirname "$0")/.." && pwd)
MAJORS=${TXB_BENCH_MAJORS:-15 19}
ITERS=${TXB_BENCH_WAKE_ITERS:-300}
ROUNDS=${TXB_BENCH_WAKE_ROUNDS:-3}

"$TXB_ROOT/tools/deps.sh"

pg_config_of() {
	local var="TXB_PG_CONFIG_$1"
	if [ -n "${!var:-}" ]; then
		echo "${!var}"
	elif [ "$1" = 15 ]; then
		echo /usr/lib/postgresql/15/bin/pg_config
	else
		"$TXB_ROOT/tools/pg-build.sh" "$1" plain
	fi
}

results=()
for major in $MAJORS; do
	(
		PG_CONFIG=$(pg_config_of "$major")
		. "$TXB_ROOT/tools/cluster.sh"
		txb_scratch W "standby-bench-$major"
		(cd "$TXB_ROOT" && tar --exclude=.git --exclude='*.o' --exclude='*.so' \
			--exclude=node_modules -cf - .) | (mkdir -p "$W/src" && cd "$W/src" && tar -xf -)
		make -s -C "$W/src" PG_CONFIG="$PG_CONFIG" all install >/dev/null
		cc -O2 -Wall -pthread -I"$("$PG_CONFIG" --includedir)" \
			"$TXB_ROOT/bench/wake_latency.c" -L"$("$PG_CONFIG" --libdir)" -lpq \
			-Wl,-rpath,"$("$PG_CONFIG" --libdir)" -o "$W/wake_latency"

		mkdir -p "$W/primary" "$W/standby"
		pport=$(txb_free_port)
		txb_cluster_start "$W/primary" "$pport" "shared_preload_libraries = 'tx_barrier'"
		primary="host=$W/primary port=$pport dbname=postgres user=postgres"
		"$PG_BINDIR/psql" -X -q -d "$primary" -c 'CREATE EXTENSION tx_barrier'
		sport=$(txb_free_port)
		txb_standby_start "$primary" "$W/standby" "$sport"
		standby="host=$W/standby port=$sport dbname=postgres user=postgres"

		echo "=== PostgreSQL $major ($("$PG_CONFIG" --version)): waiters on the standby"
		"$W/wake_latency" "$primary" "$ITERS" "$ROUNDS" 1000 "$standby" |
			tee "$W/out" | grep -v '^RESULT'
		sed -n "s/^RESULT wake /RESULT standby major=$major /p" "$W/out" >"/tmp/txb-standby-bench.$major"
	)
	results+=("$(cat "/tmp/txb-standby-bench.$major")")
	rm -f "/tmp/txb-standby-bench.$major"
done

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
echo
echo "=== standby wake latency, us after the primary's COMMIT ack (p50 / p99)"
printf '%-8s %22s %22s %10s\n' major barrier_wait "pg_xact_status 1 ms" ratio
for r in "${results[@]}"; do
	printf '%-8s %22s %22s %10s\n' "$(field "$r" major)" \
		"$(field "$r" wait_p50) / $(field "$r" wait_p99)" \
		"$(field "$r" poll_p50) / $(field "$r" poll_p99)" \
		"$(awk -v a="$(field "$r" wait_p50)" -v b="$(field "$r" poll_p50)" 'BEGIN { printf "%.2f", a / b }')"
done
echo "(ratio = barrier_wait p50 / poll p50 on the same standby, same run)"
