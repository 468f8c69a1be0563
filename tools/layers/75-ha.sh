#!/usr/bin/env bash
# High availability under Patroni: a real three-member Patroni cluster
# (Debian's patroni) on a real one-member etcd, all on loopback, with
# synchronous_mode on and tx_barrier preloaded on every member through
# Patroni's bootstrap configuration.  t/ha/patroni_failover.py produces and
# waits through libpq multi-host strings while the leader is killed
# (kill -9 of its postmaster) and failed over (patronictl failover), with
# tx_barrier.token_reservation switched on between the two through
# Patroni's dynamic configuration, and checks every token's answer on the
# new leader and the replicas.  TXB_HA_ROUNDS (default 1) repeats the
# sequence; TXB_HA_COMMITS (default 200) is how many commits must be
# acknowledged after each failover before the next.
. "$TXB_ROOT/tools/results.sh"
. "$TXB_ROOT/tools/cluster.sh"

dir="$TXB_WORK/ha"
log="$dir/ha.log"
rm -rf "$dir"
mkdir -p "$dir"
chown postgres: "$dir"

etcd_pid=
stop_all() {
	local m
	pkill -TERM -f "patroni $dir/" 2>/dev/null
	for _ in $(seq 1 100); do
		pgrep -f "patroni $dir/" >/dev/null || break
		sleep 0.1
	done
	pkill -KILL -f "patroni $dir/" 2>/dev/null
	for m in m1 m2 m3; do
		[ -f "$dir/$m/postmaster.pid" ] &&
			txb_as_owner "$PG_BINDIR/pg_ctl" -D "$dir/$m" -m immediate stop >/dev/null 2>&1
	done
	txb_stop_server "$etcd_pid"
}
trap stop_all EXIT

member_logs() {
	local f
	for f in "$dir"/m?.log; do
		[ -f "$f" ] || continue
		echo "--- $f: errors"
		grep -E 'FATAL|ERROR|PANIC|could not|failed' "$f" | tail -20
		echo "--- $f: end"
		tail -30 "$f"
	done
}
fail_setup() {
	echo "ha layer: $*" >&2
	member_logs
	txb_result ha 0 1
	exit 1
}

for cmd in patroni patronictl etcd curl; do
	command -v "$cmd" >/dev/null || fail_setup "$cmd is needed (tools/deps.sh installs it)"
done
echo "$(patroni --version), etcd $(etcd --version | sed -n 's/^etcd Version: //p'), PostgreSQL $TXB_PG_MAJOR"

txb_etcd_start "$dir/etcd" etcd_port etcd_pid || fail_setup "etcd did not start"

members=()
for m in m1 m2 m3; do
	pg=$(txb_free_port) && api=$(txb_free_port) || fail_setup "no free port"
	txb_patroni_member "$dir" "$m" "$etcd_port" "$pg" "$api" ||
		fail_setup "no configuration for $m"
	members+=(--member "$m:$pg:$api")
	# The first member bootstraps the cluster alone; the others join it
	# with a base backup once it leads.
	if [ "$m" = m1 ]; then
		txb_wait_for "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$api/primary" 200 ||
			fail_setup "m1 did not become the leader"
	fi
done

cd "$dir" || exit 1
PYTHONPATH="$TXB_SRC/client/python" timeout 900 /usr/bin/python3 \
	"$TXB_SRC/t/ha/patroni_failover.py" --dir "$dir" --patronictl-config "$dir/m1.yml" \
	"${members[@]}" --rounds "${TXB_HA_ROUNDS:-1}" \
	--commits-between "${TXB_HA_COMMITS:-200}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
p=$(grep -c '^ok ' "$log")
f=$(grep -c '^not ok ' "$log")
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
	f=1
	[ "$rc" -eq 124 ] && echo "ha layer: the run did not end within 15 minutes"
	member_logs
fi
txb_result ha "$p" "$f"
[ "$f" -eq 0 ]
