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
#   TXB_STRESS=4 TXB_REPEAT=5 tools/test.sh tap isolation
#                                 the layers under load: 4 busy processes
#                                 at normal priority beside the run, and
#                                 each layer run 5 times (one result row
#                                 per run: tap@1 ... tap@5)
#
# A major other than the host's comes from TXB_PG_CONFIG_<major> (the
# pg_config of any installed server) if set, else tools/pg-build.sh builds
# it from source (cached, a few minutes the first time): 16 with assertions
# (--enable-cassert, the server the sanitize layer also uses), 17 to 19
# plain.  The other majors' layers run one major after the other in the
# background, beside the host's layers (their output is printed at the
# end); the table at the end gives each layer's seconds.
#
# Installs what it needs (Debian packages, the extension, the client
# library), so it must run as root on a fresh machine.  Servers built from
# source are cached in TXB_PG_PREFIX (default /opt/tx_barrier/pg), Debian
# roots made with mmdebstrap in TXB_CACHE (default /var/cache/tx_barrier):
# point both at new directories to time a run from a cold start.
set -uo pipefail

TXB_ROOT=$(cd "$(dirname "$0")/.." && pwd)
export TXB_ROOT
"$TXB_ROOT/tools/deps.sh" || exit 1

HOST_PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
# The host's pg_config, for layers that build a client against the host's
# libpq (Debian's) whatever the major of their server.
export TXB_HOST_PG_CONFIG=$HOST_PG_CONFIG
if [ -n "${PG_CONFIG:-}" ]; then
	only_pg_config=$PG_CONFIG
	majors=$("$PG_CONFIG" --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
else
	only_pg_config=
	majors=${TXB_MAJORS:-15 16 17 18 19}
fi
filters=("$@")
repeat=${TXB_REPEAT:-1}
start_time=$SECONDS

TXB_TOP=$(mktemp -d /tmp/txb-test.XXXXXX)
chmod 755 "$TXB_TOP"
results_top="$TXB_TOP/results"
TXB_TIMES="$TXB_TOP/seconds"
mkdir -p "$results_top" "$TXB_TIMES"
# TAP nodes of servers running at once (the host's and another major's)
# reserve their ports in one place.
export PG_TEST_PORT_DIR="$TXB_TOP/ports"
mkdir -p "$PG_TEST_PORT_DIR"
chmod 777 "$PG_TEST_PORT_DIR"

stress_pids=()
cleanup() {
	local d
	[ ${#stress_pids[@]} -eq 0 ] || kill "${stress_pids[@]}" 2>/dev/null
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

# The build of a major the matrix uses: 16 with assertions, so that the
# matrix runs our code under the server's assertions on one major (and the
# sanitize layer's server is the same build); the others plain.
matrix_flavour() {
	if [ "$1" = 16 ]; then echo cassert; else echo plain; fi
}

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
		"$TXB_ROOT/tools/pg-build.sh" "$major" "$(matrix_flavour "$major")"
	fi
}

# Does a layer of this name pass the name filters (no filter: all do)?
layer_filtered_in() {
	local w
	[ ${#filters[@]} -eq 0 ] && return 0
	for w in "${filters[@]}"; do
		case "$1" in *"$w"*) return 0 ;; esac
	done
	return 1
}

# Is the layer wanted on this major, by its scope and the name filters?
layer_wanted() {
	local layer=$1 name=$2 all_layers=$3
	if [ "$all_layers" != yes ] && ! grep -q '^# majors: all' "$layer"; then
		return 1
	fi
	layer_filtered_in "$name"
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
		# yes on the major that runs every layer (the host's, or the one
		# PG_CONFIG names), no on the matrix's other majors, which run
		# the "# majors: all" layers only: a layer of those that repeats
		# a host-only layer's tests on the other majors skips here.
		export TXB_ALL_LAYERS=$all_layers
		# The portable edition's client checks (the C client and Python
		# layers against it) run on the host's major only: the clients'
		# SQL is the same on every major, and the portable layer's own
		# tests cover each major's answers.
		if [ "$all_layers" != yes ]; then
			export TXB_PORTABLE_CLIENT_LAYERS=${TXB_PORTABLE_CLIENT_LAYERS-}
		fi
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
			for ((rep = 1; rep <= repeat; rep++)); do
				row=$name
				[ "$repeat" -eq 1 ] || row="$name@$rep"
				echo "=== layer: $row (PostgreSQL $major)"
				t0=$SECONDS
				# A repetition reports into a directory of its own, so that
				# every row it writes (python-trixie beside python, say) is
				# kept per repetition.
				res=$TXB_RESULTS
				if [ "$repeat" -ne 1 ]; then
					res="$TXB_RESULTS/.rep"
					rm -rf "$res"
					mkdir -p "$res"
				fi
				rm -f "$res/$name"
				TXB_RESULTS=$res bash "$layer"
				rc=$?
				if [ ! -s "$res/$name" ]; then
					echo "layer $name reported no result (exit $rc): counted as 1 failure"
					echo "0 1" >"$res/$name"
				elif [ $rc -ne 0 ] && [ "$(cut -d' ' -f2 "$res/$name")" = 0 ]; then
					echo "layer $name exited $rc with no failed test: counted as 1 failure"
					echo "$(cut -d' ' -f1 "$res/$name") 1" >"$res/$name"
				fi
				if [ "$res" != "$TXB_RESULTS" ]; then
					for f in "$res"/*; do
						mv "$f" "$TXB_RESULTS/$(basename "$f")@$rep"
					done
					rmdir "$res"
				fi
				echo "$((SECONDS - t0))" >"$TXB_TIMES/$major/$row"
			done
		done
		txb_cluster_stop "$TXB_WORK/pg"
	)
}

# The servers the matrix builds from source are built in the background,
# in the order the majors run, while the host's layers run: a fresh machine
# does not wait for them one after the other, and the other majors' chain
# below starts as soon as its first server is there (pg-build.sh's lock
# makes a caller that needs one wait until it is built; cached builds come
# back at once).  The sanitize layer's server is the matrix's 16.
if [ -z "$only_pg_config" ]; then
	need=()
	for major in $majors; do
		var="TXB_PG_CONFIG_$major"
		[ "$major" != 15 ] && [ -z "${!var:-}" ] && need+=("$major $(matrix_flavour "$major")")
	done
	if { [ ${#filters[@]} -eq 0 ] || printf '%s\n' "${filters[@]}" | grep -q sanitize; } &&
		! printf '%s\n' "${need[@]}" | grep -qx '16 cassert'; then
		need=("16 cassert" "${need[@]}")
	fi
	(
		for b in "${need[@]}"; do
			# shellcheck disable=SC2086
			"$TXB_ROOT/tools/pg-build.sh" $b >/dev/null 2>&1
		done
	) &
fi

# The cached Debian roots of the python, ruby and package layers (and of the
# docs layer's FastAPI sample, the python one) are made in the background
# from the start (mostly downloading and unpacking) rather than when their
# layer comes; a layer that needs one sooner waits on its lock.
(
	. "$TXB_ROOT/tools/cluster.sh"
	mkdir -p "$TXB_TOP/roots"
	if layer_filtered_in python || layer_filtered_in docs; then
		txb_trixie_python_root made "$TXB_TOP/roots/trixie-python.log"
	fi
	if layer_filtered_in ruby; then
		txb_trixie_ruby_root made "$TXB_TOP/roots/trixie-ruby.log"
	fi
	if layer_filtered_in package; then
		txb_package_root made "$TXB_TOP/roots/bookworm-package.log"
	fi
) >/dev/null 2>&1 &

# TXB_STRESS=N: N busy processes beside the run, at normal priority, for
# proving that no test depends on the machine's speed.
for ((i = 0; i < ${TXB_STRESS:-0}; i++)); do
	(exec bash -c 'while :; do :; done') &
	stress_pids+=($!)
done
[ ${#stress_pids[@]} -eq 0 ] || echo "=== load: ${#stress_pids[@]} busy processes beside the run"

# The host's server and the client library first: every layer needs them.
if [ -z "$only_pg_config" ]; then
	PG_CONFIG=$HOST_PG_CONFIG "$TXB_ROOT/tools/install.sh" || exit 1
else
	"$TXB_ROOT/tools/install.sh" || exit 1
fi

# run_matrix_major MAJOR: one major's layers, or a failure row if it has no
# server or stopped before any layer.
run_matrix_major() {
	local major=$1 pgc all_layers=no
	mkdir -p "$results_top/$major" "$TXB_TIMES/$major"
	if ! pgc=$(pg_config_for "$major"); then
		echo "=== PostgreSQL $major: no server (see above): counted as 1 failure"
		echo "0 1" >"$results_top/$major/server"
		return
	fi
	if [ -n "$only_pg_config" ] || [ "$pgc" = "$HOST_PG_CONFIG" ]; then
		all_layers=yes
	fi
	if ! run_major "$major" "$pgc" "$all_layers" &&
		[ -z "$(ls -A "$results_top/$major")" ]; then
		echo "=== PostgreSQL $major: the run stopped before any layer: counted as 1 failure"
		echo "0 1" >"$results_top/$major/run"
	fi
}

# The host's major in the foreground; the others one after the other in
# the background, each into its own log.
host_major=
other_majors=()
for major in $majors; do
	if [ -z "$host_major" ] && { [ -n "$only_pg_config" ] || [ "$major" = 15 ]; }; then
		host_major=$major
	else
		other_majors+=("$major")
	fi
done
chain_pid=
if [ ${#other_majors[@]} -gt 0 ]; then
	(
		for major in "${other_majors[@]}"; do
			run_matrix_major "$major" >"$TXB_TOP/major-$major.log" 2>&1
		done
	) &
	chain_pid=$!
	echo "=== PostgreSQL ${other_majors[*]}: in the background (output at the end)"
fi
[ -z "$host_major" ] || run_matrix_major "$host_major"
[ -z "$chain_pid" ] || wait "$chain_pid"
for major in "${other_majors[@]}"; do
	cat "$TXB_TOP/major-$major.log"
done

# The table: one row per layer, one column per major, passed/failed, and
# the seconds each took.
echo "=== summary (passed/failed, seconds; - = not run on that major;"
echo "    skip = the layer has nothing to run there, counted neither way)"
layers=$(for f in "$results_top"/*/*; do [ -e "$f" ] && basename "$f"; done | sort -uV)
printf '%-16s' layer
for major in $majors; do printf '%16s' "PG $major"; done
printf '\n'
total_pass=0
total_fail=0
skips=()
for name in $layers; do
	printf '%-16s' "$name"
	for major in $majors; do
		f="$results_top/$major/$name"
		if [ -s "$f" ]; then
			read -r p fl skip <"$f"
			secs=$(cat "$TXB_TIMES/$major/$name" 2>/dev/null || echo '?')
			if [ "${skip:-}" = skip ]; then
				printf '%16s' "skip ${secs}s"
				skips+=("$name (PG $major)")
			else
				printf '%16s' "$p/$fl ${secs}s"
			fi
			total_pass=$((total_pass + p))
			total_fail=$((total_fail + fl))
		else
			printf '%16s' -
		fi
	done
	printf '\n'
done
status=0
[ $total_fail -eq 0 ] || status=1
# A run that tested nothing fails, unless all it was asked for was skipped
# by design.
[ $total_pass -gt 0 ] || [ ${#skips[@]} -gt 0 ] || status=1
echo "wall time: $((SECONDS - start_time)) s"
[ ${#skips[@]} -eq 0 ] || echo "skipped (not counted): ${skips[*]}"
echo "$total_pass passed, $total_fail failed"
exit $status
