#!/usr/bin/env bash
# C client library (libtxbarrier) and the txb tool, against the shared server:
#   build        the library, txb and the tests, with -Werror        (1 test)
#   lint         cppcheck and clang-tidy                              (1 test)
#   prove        library tests (C, TAP) and CLI tests (shell, TAP)   (each
#                assertion counts); the shared waiter's tests
#                (test_waiter) on a second server, started here, with
#                tx_barrier in shared_preload_libraries
#   valgrind     memcheck on the library tests, no errors or leaks   (1 test)
#   fuzz         libFuzzer + ASan/UBSan on txb_token_parse, 20 s     (1 test)
#   e2e          the installed library: pkg-config, and a program
#                built outside the repo that waits on a token made
#                on another connection                               (3 tests)
. "$TXB_ROOT/tools/results.sh"
. "$TXB_ROOT/tools/cluster.sh"
set -u

src="$TXB_SRC/client"
[ -d "$src" ] || src="$TXB_ROOT/client"
logs="$TXB_WORK/client-logs"
mkdir -p "$logs"
DB=txb_client
NOEXT=txb_client_noext
passed=0
failed=0

pass() { passed=$((passed + 1)); echo "client: ok - $1"; }
fail() {
	failed=$((failed + 1))
	echo "client: FAILED - $1"
	if [ -n "${2:-}" ] && [ -f "$2" ]; then
		echo "--- $2 (last 40 lines)"
		tail -n 40 "$2"
	fi
}

finish() {
	txb_result client "$passed" "$failed"
	[ "$failed" -eq 0 ]
	exit
}

# Databases: one with the extension, one without.
if ! psql -X -q -v ON_ERROR_STOP=1 \
	-c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" \
	-c "DROP DATABASE IF EXISTS $NOEXT" -c "CREATE DATABASE $NOEXT" \
	>"$logs/setup.log" 2>&1 ||
	! txb_install_barrier "$DB" >>"$logs/setup.log" 2>&1; then
	fail "create the test databases" "$logs/setup.log"
	finish
fi

# The preloaded server of the shared waiter's tests (barrier_wait_any()
# sleeps only there), on 127.0.0.1.
trap 'txb_cluster_stop "$TXB_WORK/client-preloaded"' EXIT
if txb_preloaded_start "$TXB_WORK/client-preloaded" pre_port "$DB" >>"$logs/setup.log" 2>&1; then
	export TXB_TEST_PRELOADED_CONNINFO="host=127.0.0.1 port=$pre_port dbname=$DB"
else
	fail "start the preloaded server" "$logs/setup.log"
	finish
fi

# ------------------------------------------------------------------ build
if make -C "$src" clean >/dev/null 2>&1 &&
	make -C "$src" all test/test_txb test/test_waiter >"$logs/build.log" 2>&1; then
	pass "build with -Wall -Wextra -Werror"
else
	fail "build with -Wall -Wextra -Werror" "$logs/build.log"
	finish
fi

# ------------------------------------------------------------------ lint
if make -C "$src" lint >"$logs/lint.log" 2>&1; then
	pass "cppcheck and clang-tidy"
else
	fail "cppcheck and clang-tidy" "$logs/lint.log"
fi

# ------------------------------------------------------------------ TAP
export TXB_TEST_CONNINFO="dbname=$DB" TXB_TEST_NOEXT_CONNINFO="dbname=$NOEXT"
export TXB_TEST_DB=$DB TXB_TEST_NOEXT_DB=$NOEXT TXB_BIN="$src/txb"
(cd "$src" && timeout 900 prove -v test/test_txb test/test_waiter test/cli.sh) \
	>"$logs/prove.log" 2>&1
grep -E '^(not ok|Bail out|# )' "$logs/prove.log"
tail -n 4 "$logs/prove.log"
read -r p f < <(txb_count_prove "$logs/prove.log")
passed=$((passed + p))
failed=$((failed + f))

# ------------------------------------------------------------------ valgrind
for t in test_txb test_waiter; do
	(cd "$src" && timeout 900 valgrind --tool=memcheck --error-exitcode=99 \
		--leak-check=full --errors-for-leak-kinds=definite,indirect \
		--track-origins=yes --log-file="$logs/valgrind-$t.log" \
		"test/$t") >"$logs/valgrind-$t.tap" 2>&1
	rc=$?
	if [ $rc -eq 0 ] && grep -q '^1\.\.[1-9]' "$logs/valgrind-$t.tap" &&
		! grep -q '^not ok' "$logs/valgrind-$t.tap"; then
		pass "valgrind memcheck on $t: $(grep -o 'ERROR SUMMARY: [0-9]* errors' "$logs/valgrind-$t.log")"
	else
		grep '^not ok' "$logs/valgrind-$t.tap"
		fail "valgrind memcheck on $t (exit $rc)" "$logs/valgrind-$t.log"
	fi
done

# ------------------------------------------------------------------ fuzz
if timeout 300 make -C "$src" fuzz FUZZ_SECONDS=20 >"$logs/fuzz.log" 2>&1 &&
	grep -q '^Done [0-9]* runs' "$logs/fuzz.log"; then
	pass "libFuzzer on txb_token_parse: $(grep -o '^Done [0-9]* runs' "$logs/fuzz.log")"
else
	fail "libFuzzer on txb_token_parse" "$logs/fuzz.log"
fi

# ------------------------------------------------------------------ e2e
# The installed library (tools/install.sh ran before the layers).
version="$(sed -n 's/^EXTVERSION *= *//p' "$TXB_ROOT/Makefile").0"
if [ "$(pkg-config --modversion tx_barrier 2>/dev/null)" = "$version" ] &&
	[ "$(txb --version 2>/dev/null)" = "txb (tx_barrier) $version" ] &&
	[ -f "$(pkg-config --variable=prefix tx_barrier)/share/man/man1/txb.1" ]; then
	pass "installed: pkg-config module, txb on PATH, man page"
else
	fail "installed: pkg-config module, txb on PATH, man page"
fi

txb_scratch app_dir app
cp "$src/examples/wait_for_token.c" "$app_dir/app.c"
# shellcheck disable=SC2046
if (cd "$app_dir" && cc app.c $(pkg-config --cflags --libs tx_barrier) \
	-o app) >"$logs/e2e-build.log" 2>&1 &&
	ldd "$app_dir/app" | grep -q 'libtxbarrier\.so\.1 => /'; then
	pass "a program outside the repo builds with pkg-config tx_barrier"

	# Producer on one connection; the program waits on another.
	coproc PRODUCER { psql -X -q -At -d "$DB" 2>&1; }
	echo 'BEGIN; SELECT barrier_enqueue();' >&"${PRODUCER[1]}"
	IFS= read -r -t 120 token <&"${PRODUCER[0]}"
	PGAPPNAME=txb-e2e-app "$app_dir/app" "dbname=$DB" "${token:-x}" \
		>"$logs/e2e.out" 2>&1 &
	app=$!
	blocked=no
	if [ -n "${token:-}" ] &&
		txb_wait_for "txb_lock_waiting txb-e2e-app '$token' -d '$DB'" t 3000; then
		blocked=yes
	fi
	echo 'COMMIT;' >&"${PRODUCER[1]}"
	wait "$app"
	rc=$?
	echo '\q' >&"${PRODUCER[1]}"
	wait "$PRODUCER_PID" 2>/dev/null
	if [ "$blocked" = yes ] && [ $rc -eq 0 ] &&
		[ "$(cat "$logs/e2e.out")" = committed ]; then
		pass "the program blocked on the producer's token and saw it commit"
	else
		echo "token=${token:-} blocked=$blocked exit=$rc"
		fail "the program blocked on the producer's token and saw it commit" \
			"$logs/e2e.out"
	fi
else
	fail "a program outside the repo builds with pkg-config tx_barrier" \
		"$logs/e2e-build.log"
	fail "the program blocked on the producer's token and saw it commit"
fi

psql -X -q -c "DROP DATABASE IF EXISTS $DB" -c "DROP DATABASE IF EXISTS $NOEXT" \
	>/dev/null 2>&1
txb_cluster_stop "$TXB_WORK/client-preloaded"
trap - EXIT
finish
