#!/usr/bin/env bash
# Runs every test layer of tx_barrier against real servers and ends with one
# line "N passed, N failed" that counts all layers.  Exits non-zero if any
# test failed or a layer could not run.
#
#   tools/test.sh            all layers
#   tools/test.sh regress    only the layers whose name contains "regress"
#
# Installs what it needs (Debian packages, the extension, the client
# library), so it must run as root on a fresh machine.
set -uo pipefail

TXB_ROOT=$(cd "$(dirname "$0")/.." && pwd)
export TXB_ROOT
. "$TXB_ROOT/tools/cluster.sh"

"$TXB_ROOT/tools/deps.sh" || exit 1
"$TXB_ROOT/tools/install.sh" || exit 1

TXB_WORK=$(mktemp -d /tmp/txb-test.XXXXXX)
chmod 755 "$TXB_WORK"
export TXB_WORK
export TXB_RESULTS="$TXB_WORK/results"
mkdir -p "$TXB_RESULTS"

cleanup() {
	txb_cluster_stop "$TXB_WORK/pg"
	if [ -z "${TXB_KEEP:-}" ]; then
		rm -rf "$TXB_WORK"
	else
		echo "kept $TXB_WORK"
	fi
}
trap cleanup EXIT

# A copy of the tree that the unprivileged server owner can write to: the
# TAP tests run initdb, which refuses to run as root.
export TXB_SRC="$TXB_WORK/src"
mkdir -p "$TXB_SRC"
(cd "$TXB_ROOT" && tar --exclude=.git --exclude='tmp_check' --exclude='results' \
	--exclude='*.o' --exclude='*.so' -cf - .) | (cd "$TXB_SRC" && tar -xf -)
if [ "$(id -u)" -eq 0 ]; then
	chown -R postgres: "$TXB_WORK"
fi

# The shared server for the layers that do not start their own.
mkdir -p "$TXB_WORK/pg"
port=$(txb_free_port) || exit 1
txb_cluster_start "$TXB_WORK/pg" "$port" || exit 1
export PGHOST="$TXB_WORK/pg" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres

status=0
for layer in "$TXB_ROOT"/tools/layers/*.sh; do
	name=$(basename "$layer" .sh)
	name=${name#[0-9][0-9]-}
	if [ $# -gt 0 ]; then
		wanted=no
		for w in "$@"; do
			case "$name" in *"$w"*) wanted=yes ;; esac
		done
		[ "$wanted" = yes ] || continue
	fi
	echo "=== layer: $name"
	bash "$layer"
	rc=$?
	if [ ! -s "$TXB_RESULTS/$name" ]; then
		echo "layer $name reported no result (exit $rc): counted as 1 failure"
		echo "0 1" >"$TXB_RESULTS/$name"
	elif [ $rc -ne 0 ] && [ "$(cut -d' ' -f2 "$TXB_RESULTS/$name")" = 0 ]; then
		echo "layer $name exited $rc with no failed test: counted as 1 failure"
		echo "$(cut -d' ' -f1 "$TXB_RESULTS/$name") 1" >"$TXB_RESULTS/$name"
	fi
done

total_pass=0
total_fail=0
echo "=== summary"
for f in "$TXB_RESULTS"/*; do
	[ -e "$f" ] || continue
	read -r p fl <"$f"
	printf '%-12s %4d passed, %d failed\n' "$(basename "$f")" "$p" "$fl"
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + fl))
done
[ $total_fail -eq 0 ] || status=1
[ $total_pass -gt 0 ] || status=1
echo "$total_pass passed, $total_fail failed"
exit $status
