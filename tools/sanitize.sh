#!/usr/bin/env bash
# Runs the server-side test layers against PostgreSQL servers built from
# source with run-time checks, and fails on any finding:
#
#   asan         the extension built with -fsanitize=address,undefined,
#                loaded into a --enable-cassert server that runs with the
#                sanitizer runtimes preloaded (LD_PRELOAD): every memory
#                access and undefined behaviour of our code is checked, and
#                the server's assertions are on.  The server is the cached
#                cassert build, so no sanitized server build is needed.
#   asan-server  the server itself built with -fsanitize=address,undefined
#                and --enable-cassert (tools/pg-build.sh MAJOR asan, about
#                ten minutes on two cores the first time): also checks the
#                server code our calls run
#   cassert      --enable-cassert: the server's own assertions, which our
#                code paths must never trip
#
#   tools/sanitize.sh [MAJOR [FLAVOUR...]]   (default: 16 asan cassert)
#   TXB_SANITIZE_LAYERS="regress isolation" tools/sanitize.sh 16 asan
#
# For each flavour: tools/pg-build.sh builds the server (cached), a private
# copy of it is made in the scratch directory (PostgreSQL's installation is
# relocatable; the copy keeps the extension this run installs from any other
# run on the same cached server), the extension is built and installed with
# that server's PGXS flags, a shared
# server is started and the layers named in TXB_SANITIZE_LAYERS (default:
# regress isolation tap) run under the test-layer contract.  Then every
# server log and sanitizer log is searched for AddressSanitizer and
# UndefinedBehaviorSanitizer reports, failed assertions (TRAP) and
# processes killed by a signal; each finding counts as a failure.  Ends
# with "sanitize: N passed, N failed"; exits non-zero on any failure.
set -uo pipefail

TXB_ROOT=$(cd "$(dirname "$0")/.." && pwd)
export TXB_ROOT
major=${1:-16}
shift || true
flavours=("$@")
[ ${#flavours[@]} -gt 0 ] || flavours=(asan cassert)
layers=${TXB_SANITIZE_LAYERS:-regress isolation tap}

# Leaks at exit are by design in the postmaster and the client programs
# (pg_config included: with leak checks on it fails, and the helpers would
# fall back to another server); everything else aborts the process with a
# stack, logged per process.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:print_stacktrace=1:disable_coredump=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

total_passed=0
total_failed=0

# sanitize_flavour FLAVOUR: one build, its layers and its log search.
sanitize_flavour() {
	local flavour=$1 build_flavour=$1 cached copt=
	echo "=== sanitize: PostgreSQL $major ($flavour)"
	case $flavour in
	asan)
		build_flavour=cassert
		copt="-fsanitize=address,undefined -fno-sanitize=alignment -fno-sanitize-recover=all -fno-omit-frame-pointer"
		;;
	asan-server) build_flavour=asan ;;
	cassert) ;;
	*)
		echo "sanitize: unknown flavour $flavour" >&2
		return 1
		;;
	esac
	cached=$("$TXB_ROOT/tools/pg-build.sh" "$major" "$build_flavour") || return 1
	(
		export PG_CONFIG=$cached
		. "$TXB_ROOT/tools/cluster.sh"
		. "$TXB_ROOT/tools/results.sh"
		txb_scratch work "sanitize-$flavour" || exit 1
		cp -a "$(dirname "$(dirname "$cached")")" "$work/server"
		pgc=$work/server/bin/pg_config
		export PG_CONFIG=$pgc PG_BINDIR=$work/server/bin
		export TXB_WORK=$work
		export TXB_RESULTS=$work/results
		export TXB_SRC=$work/src
		mkdir -p "$TXB_RESULTS" "$TXB_SRC" "$work/pg" "$work/san"
		if [ "$flavour" != cassert ]; then
			export ASAN_OPTIONS=$ASAN_OPTIONS:log_path=$work/san/asan
			export UBSAN_OPTIONS=$UBSAN_OPTIONS:log_path=$work/san/ubsan
		fi
		if [ "$PG_BINDIR" != "$("$pgc" --bindir)" ]; then
			echo "sanitize: $flavour: $pgc does not run" >&2
			exit 1
		fi

		(cd "$TXB_ROOT" && tar --exclude=.git --exclude='tmp_check' --exclude='results' \
			--exclude='node_modules' --exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - .) |
			(cd "$TXB_SRC" && tar -xf -)
		if ! make -s -C "$TXB_SRC" PG_CONFIG="$pgc" ${copt:+COPT="$copt"} all install >"$work/build.log" 2>&1; then
			cat "$work/build.log"
			echo "sanitize: $flavour: the extension did not build"
			echo "0 1" >"$TXB_RESULTS/build"
			cp "$TXB_RESULTS"/* "$sum_dir/" 2>/dev/null
			exit 1
		fi
		if [ -n "$copt" ]; then
			# The instrumented module needs the runtimes loaded first, in
			# every server process (the TAP nodes' too).
			if ! ldd "$("$pgc" --pkglibdir)/tx_barrier.so" | grep -q libasan; then
				echo "sanitize: $flavour: the module is not instrumented" >&2
				echo "0 1" >"$sum_dir/$flavour-build"
				exit 1
			fi
			export LD_PRELOAD="$("${CC:-gcc}" -print-file-name=libasan.so) $("${CC:-gcc}" -print-file-name=libubsan.so)"
		fi
		if [ "$(id -u)" -eq 0 ]; then
			chown -R postgres: "$work"
		fi
		txb_cluster_start_free "$work/pg" port || {
			echo "0 1" >"$sum_dir/$flavour-server"
			exit 1
		}
		export PGHOST=$work/pg PGPORT=$port PGUSER=postgres PGDATABASE=postgres
		export PATH="$PG_BINDIR:$PATH"
		if [ -n "$copt" ] && ! grep -q libasan "/proc/$(head -1 "$work/pg/data/postmaster.pid")/maps"; then
			echo "sanitize: $flavour: the postmaster has no sanitizer runtime loaded" >&2
			echo "0 1" >"$sum_dir/$flavour-server"
			exit 1
		fi
		# The server under test, with assertions on, not some other one.
		if [ "$(psql -XAtc 'SELECT current_setting($$server_version_num$$)::int / 10000 || $$ $$ || current_setting($$debug_assertions$$)')" != "$major on" ]; then
			echo "sanitize: $flavour: the server started is not PostgreSQL $major with assertions" >&2
			echo "0 1" >"$sum_dir/$flavour-server"
			exit 1
		fi

		for name in $layers; do
			for layer in "$TXB_ROOT"/tools/layers/[0-9][0-9]-"$name".sh; do
				[ -f "$layer" ] || continue
				echo "=== layer: $name (PostgreSQL $major $flavour)"
				bash "$layer"
				[ -s "$TXB_RESULTS/$name" ] || echo "0 1" >"$TXB_RESULTS/$name"
			done
		done
		txb_cluster_stop "$work/pg"

		# Findings: sanitizer logs, and in every server log (the shared
		# server's, the TAP nodes') sanitizer reports, failed assertions
		# and backends that aborted or crashed (SIGABRT, SIGSEGV; the tests kill
		# some with SIGKILL on purpose).
		local findings=$work/findings
		: >"$findings"
		for f in "$work"/san/*; do
			[ -s "$f" ] && { echo "--- $f"; cat "$f"; } >>"$findings"
		done
		grep -HE 'AddressSanitizer|runtime error:|TRAP: |terminated by signal (6|11)' \
			"$work/pg/server.log" "$TXB_SRC"/tmp_check/log/*.log \
			"$TXB_SRC"/output_iso/log/*.log "$TXB_SRC"/log/*.log \
			2>/dev/null >>"$findings"
		if [ -s "$findings" ]; then
			echo "sanitize: $flavour: findings:"
			head -n 200 "$findings"
			cp "$findings" "$sum_dir/$flavour-findings.txt"
			echo "0 1" >"$TXB_RESULTS/findings"
		else
			echo "1 0" >"$TXB_RESULTS/findings"
		fi
		for r in "$TXB_RESULTS"/*; do
			cp "$r" "$sum_dir/$flavour-$(basename "$r")"
		done
	)
}

sum_dir=$(mktemp -d /tmp/txb-sanitize-results.XXXXXX)
trap 'rm -rf "$sum_dir"' EXIT
start=$SECONDS
for flavour in "${flavours[@]}"; do
	t0=$SECONDS
	sanitize_flavour "$flavour" || echo "0 1" >"$sum_dir/$flavour-run"
	echo "=== sanitize: $flavour took $((SECONDS - t0)) s"
done

echo "=== sanitize: PostgreSQL $major, $((SECONDS - start)) s"
for r in "$sum_dir"/*; do
	[ -f "$r" ] || continue
	case "$r" in *.txt) continue ;; esac
	read -r p f <"$r"
	printf '  %-24s %4d passed, %d failed\n' "$(basename "$r")" "$p" "$f"
	total_passed=$((total_passed + p))
	total_failed=$((total_failed + f))
done
for r in "$sum_dir"/*.txt; do
	[ -f "$r" ] && echo "findings kept in /tmp/$(basename "$r")" && cp "$r" /tmp/
done
echo "sanitize: $total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ] && [ "$total_passed" -gt 0 ]
