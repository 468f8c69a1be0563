#!/usr/bin/env bash
# Runs every test layer of tx_barrier against real servers and ends with one
# line "N passed, N failed" that counts every layer on every PostgreSQL
# major, after a table of what ran where.  Exits non-zero if any test
# failed or a layer could not run.
#
#   tools/test.sh                 the matrix: every layer on the host's
#                                 PostgreSQL 15 (Debian's package), and the
#                                 layers that concern the server (those
#                                 marked "# majors: all") on 16, 17, 18, 19
#   tools/test.sh regress tap     only the layers whose name contains one
#                                 of the words
#   PG_CONFIG=/path/to/pg_config tools/test.sh
#                                 every layer against that one installed
#                                 PostgreSQL (any major from 15 on)
#   TXB_MAJORS="15 18" tools/test.sh
#                                 the matrix, on these majors only
#
# A major other than the host's comes from TXB_PG_CONFIG_<major> (the
# pg_config of any installed server) if set, else tools/pg-build.sh builds
# it from source (cached, a few minutes the first time).
#
# Installs what it needs (Debian packages, the extension, the client
# library), so it must run as root on a fresh machine.
set -uo pipefail

TXB_ROOT=$(cd "$(dirname "$0")/.." && pwd)
export TXB_ROOT
"$TXB_ROOT/tools/deps.sh" || exit 1

HOST_PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
if [ -n "${PG_CONFIG:-}" ]; then
	only_pg_config=$PG_CONFIG
	majors=$("$PG_CONFIG" --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
else
	only_pg_config=
	majors=${TXB_MAJORS:-15 16 17 18 19}
fi
filters=("$@")

TXB_TOP=$(mktemp -d /tmp/txb-test.XXXXXX)
chmod 755 "$TXB_TOP"
results_top="$TXB_TOP/results"
mkdir -p "$results_top"

cleanup() {
	local d
	for d in "$TXB_TOP"/*/pg; do
		[ -d "$d" ] && (PG_CONFIG=$(cat "$d/../pg_config") && . "$TXB_ROOT/tools/cluster.sh" && txb_cluster_stop "$d")
	done
	if [ -z "${TXB_KEEP:-}" ]; then
		rm -rf "$TXB_TOP"
	else
		echo "kept $TXB_TOP"
	fi
}
trap cleanup EXIT

# The pg_config of a major: the host's, the one given, or a source build.
pg_config_for() {
	local major=$1 var="TXB_PG_CONFIG_$1"
	if [ -n "$only_pg_config" ]; then
		echo "$only_pg_config"
	elif [ -n "${!var:-}" ]; then
		echo "${!var}"
	elif [ "$major" = 15 ]; then
		echo "$HOST_PG_CONFIG"
	else
		"$TXB_ROOT/tools/pg-build.sh" "$major" plain
	fi
}

# Is the layer wanted on this major, by its scope and the name filters?
layer_wanted() {
	local layer=$1 name=$2 all_layers=$3 w
	if [ "$all_layers" != yes ] && ! grep -q '^# majors: all' "$layer"; then
		return 1
	fi
	[ ${#filters[@]} -eq 0 ] && return 0
	for w in "${filters[@]}"; do
		case "$name" in *"$w"*) return 0 ;; esac
	done
	return 1
}

# run_major MAJOR PG_CONFIG ALL_LAYERS: installs the extension into that
# server, starts the shared server and runs the wanted layers, each result
# in $results_top/MAJOR/LAYER.
run_major() {
	local major=$1 pgc=$2 all_layers=$3 layer name rc port
	(
		export PG_CONFIG=$pgc
		. "$TXB_ROOT/tools/cluster.sh"
		export TXB_WORK="$TXB_TOP/$major"
		export TXB_RESULTS="$results_top/$major"
		export TXB_SRC="$TXB_WORK/src"
		mkdir -p "$TXB_WORK/pg" "$TXB_RESULTS" "$TXB_SRC"
		echo "$pgc" >"$TXB_WORK/pg_config"
		echo "=== PostgreSQL $major: $("$pgc" --version) ($pgc)"

		# A copy of the tree that the unprivileged server owner can write
		# to: the TAP tests run initdb, which refuses to run as root.  Each
		# major builds in its own copy.
		(cd "$TXB_ROOT" && tar --exclude=.git --exclude='tmp_check' --exclude='results' \
			--exclude='node_modules' --exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - .) |
			(cd "$TXB_SRC" && tar -xf -)
		if ! make -s -C "$TXB_SRC" PG_CONFIG="$pgc" all install >"$TXB_WORK/build.log" 2>&1; then
			cat "$TXB_WORK/build.log"
			echo "0 1" >"$TXB_RESULTS/build"
			exit 1
		fi
		if [ "$(id -u)" -eq 0 ]; then
			chown -R postgres: "$TXB_WORK"
		fi

		txb_cluster_start_free "$TXB_WORK/pg" port || {
			echo "0 1" >"$TXB_RESULTS/server"
			exit 1
		}
		export PGHOST="$TXB_WORK/pg" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
		export PATH="$PG_BINDIR:$PATH"

		for layer in "$TXB_ROOT"/tools/layers/*.sh; do
			name=$(basename "$layer" .sh)
			name=${name#[0-9][0-9]-}
			layer_wanted "$layer" "$name" "$all_layers" || continue
			echo "=== layer: $name (PostgreSQL $major)"
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
		txb_cluster_stop "$TXB_WORK/pg"
	)
}

# The servers the matrix builds from source are built in the background,
# at the lowest CPU priority, while the host's layers run, so that a fresh
# machine does not wait for them one after the other; pg-build.sh's lock
# makes a caller that needs one wait until it is there.  (Cached builds
# come back at once.)
if [ -z "$only_pg_config" ]; then
	need=()
	for major in $majors; do
		var="TXB_PG_CONFIG_$major"
		[ "$major" != 15 ] && [ -z "${!var:-}" ] && need+=("$major plain")
	done
	if [ ${#filters[@]} -eq 0 ] || printf '%s\n' "${filters[@]}" | grep -q sanitize; then
		need=("16 asan" "${need[@]}")
	fi
	(
		for b in "${need[@]}"; do
			# shellcheck disable=SC2086
			nice -n 19 "$TXB_ROOT/tools/pg-build.sh" $b >/dev/null 2>&1
		done
	) &
fi

# The host's server and the client library first: every layer needs them.
if [ -z "$only_pg_config" ]; then
	PG_CONFIG=$HOST_PG_CONFIG "$TXB_ROOT/tools/install.sh" || exit 1
else
	"$TXB_ROOT/tools/install.sh" || exit 1
fi

for major in $majors; do
	mkdir -p "$results_top/$major"
	if ! pgc=$(pg_config_for "$major"); then
		echo "=== PostgreSQL $major: no server (see above): counted as 1 failure"
		echo "0 1" >"$results_top/$major/server"
		continue
	fi
	all_layers=no
	if [ -n "$only_pg_config" ] || [ "$pgc" = "$HOST_PG_CONFIG" ]; then
		all_layers=yes
	fi
	if ! run_major "$major" "$pgc" "$all_layers" &&
		[ -z "$(ls -A "$results_top/$major")" ]; then
		echo "=== PostgreSQL $major: the run stopped before any layer: counted as 1 failure"
		echo "0 1" >"$results_top/$major/run"
	fi
done

wait	# the background builder, done by now

# The table: one row per layer, one column per major, passed/failed.
echo "=== summary (passed/failed; - = not run on that major)"
layers=$(for f in "$results_top"/*/*; do [ -e "$f" ] && basename "$f"; done | sort -u)
printf '%-16s' layer
for major in $majors; do printf '%10s' "PG $major"; done
printf '\n'
total_pass=0
total_fail=0
for name in $layers; do
	printf '%-16s' "$name"
	for major in $majors; do
		f="$results_top/$major/$name"
		if [ -s "$f" ]; then
			read -r p fl <"$f"
			printf '%10s' "$p/$fl"
			total_pass=$((total_pass + p))
			total_fail=$((total_fail + fl))
		else
			printf '%10s' -
		fi
	done
	printf '\n'
done
status=0
[ $total_fail -eq 0 ] || status=1
[ $total_pass -gt 0 ] || status=1
echo "$total_pass passed, $total_fail failed"
exit $status
