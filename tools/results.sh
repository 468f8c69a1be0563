# Shell functions the test layers use to count what they ran.  Source it.
# A layer ends by calling txb_result NAME PASSED FAILED, which the runner
# (tools/test.sh) adds up into the final "N passed, N failed" line.

txb_result() {
	echo "$2 $3" >"$TXB_RESULTS/$1"
	echo "$1: $2 passed, $3 failed"
}

# txb_skip NAME REASON: the layer has nothing to run on this major, by
# design (REASON says why); the runner's table shows "skip" and counts it
# neither as passed nor as failed.
txb_skip() {
	echo "0 0 skip" >"$TXB_RESULTS/$1"
	echo "$1: skipped: $2"
}

# txb_count_pg_regress LOG EXPECTED: counts the tests in the output of
# pg_regress or pg_isolation_regress, in either format: "test NAME ... ok"
# / "... FAILED" (PostgreSQL 15) or TAP, "ok N - NAME" / "not ok N - NAME"
# (16 on).  A test that never reported (the run stopped early) counts as
# failed, so the failures are at least EXPECTED minus what passed.
txb_count_pg_regress() {
	local log=$1 expected=${2:-0} p f
	p=$(grep -cE '(\.\.\. +ok( |$))|(^ok [0-9]+ )' "$log")
	f=$(grep -cE '(\.\.\. +(FAILED|failed))|(^not ok [0-9]+ )' "$log")
	if [ $((p + f)) -lt "$expected" ]; then
		f=$((expected - p))
	fi
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	echo "$p $f"
}

# txb_make_installcheck LOG MAKE_ARGS...: PGXS installcheck in $TXB_SRC as
# the server's owner, against the server of $PG_CONFIG, output in LOG.
txb_make_installcheck() {
	local log=$1
	shift
	(cd "$TXB_SRC" && runuser -u postgres -- env PATH="$PATH" PG_CONFIG="$PG_CONFIG" \
		make -s PG_CONFIG="$PG_CONFIG" installcheck "$@") 2>&1 | tee "$log"
}

# txb_make_var NAME: the value of a variable of the top-level Makefile.
txb_make_var() {
	make -s -C "$TXB_SRC" PG_CONFIG="$PG_CONFIG" --no-print-directory \
		-f Makefile -f - txb-print-var VAR="$1" <<'MK'
txb-print-var:
	@echo $($(VAR))
MK
}

# Counts assertions in the output of prove or pg_prove: every assertion of a
# passing run passes; a failing run counts its failed subtests, and at least
# one failure per script that died without reporting any.
txb_count_prove() {
	local log=$1 total failed died
	total=$(sed -n 's/^Files=[0-9]*, Tests=\([0-9]*\),.*/\1/p' "$log" | tail -1)
	total=${total:-0}
	# No test here may skip: a skipped script is a failure.
	if grep -q '^Result: PASS' "$log" && ! grep -qE 'skipped:' "$log"; then
		echo "$total 0"
		return
	fi
	failed=$(sed -n 's/.*Failed \([0-9]*\)\/[0-9]* subtests.*/\1/p' "$log" |
		awk '{s+=$1} END {print s+0}')
	died=$(grep -cE 'Wstat: [1-9]|Parse errors|No subtests run|skipped:|Bailout called' "$log")
	if [ "$died" -gt "$failed" ]; then
		failed=$died
	fi
	[ "$failed" -gt 0 ] || failed=1
	local passed=$((total - failed))
	[ $passed -ge 0 ] || passed=0
	echo "$passed $failed"
}

# txb_count_unittest LOG RC: "PASSED FAILED" of a `python3 -m unittest -v`
# run whose output is LOG and exit status RC.  A skipped test counts as
# failed (the layer provides everything); a run that did not finish (a
# timeout) counts the verdicts it printed and the test it was in as failed.
txb_count_unittest() {
	local log=$1 rc=$2 ran ok bad f e s
	ran=$(sed -n 's/^Ran \([0-9]*\) tests\? in.*/\1/p' "$log" | tail -1)
	if [ -n "$ran" ]; then
		s=$(sed -n 's/^\(OK\|FAILED\) (.*skipped=\([0-9]*\).*/\2/p' "$log" | tail -1)
		bad=${s:-0}
		if ! grep -qE '^OK( |$)' "$log"; then
			f=$(sed -n 's/^FAILED (.*failures=\([0-9]*\).*/\1/p' "$log" | tail -1)
			e=$(sed -n 's/^FAILED (.*errors=\([0-9]*\).*/\1/p' "$log" | tail -1)
			[ $((${f:-0} + ${e:-0})) -gt 0 ] || f=1
			bad=$((bad + ${f:-0} + ${e:-0}))
		fi
		ok=$((ran - bad))
	else
		ok=$(grep -cE ' \.\.\. ok$' "$log")
		bad=$(($(grep -cE ' \.\.\. (FAIL|ERROR|skipped.*)$' "$log") + 1))
	fi
	[ "$ok" -ge 0 ] || ok=0
	[ "$rc" -eq 0 ] || [ "$bad" -gt 0 ] || bad=1
	[ "$ok" -gt 0 ] || [ "$bad" -gt 0 ] || bad=1
	echo "$ok $bad"
}

# txb_count_node_tap LOG RC: "PASSED FAILED" of a `node --test
# --test-reporter=tap` run whose output is LOG and exit status RC: one
# "ok N - name" / "not ok N - name" per test, indented four spaces per
# level of nesting (test files are not levels of their own).  A skipped
# test (# SKIP) counts as failed (the layer provides everything), and so
# does a run that died (a timeout) without reporting a failed test.
txb_count_node_tap() {
	local log=$1 rc=$2 ok bad
	ok=$(grep -E '^ *ok [0-9]+ - ' "$log" | grep -vc '# SKIP')
	bad=$(($(grep -cE '^ *not ok [0-9]+ - ' "$log") + $(grep -E '^ *ok [0-9]+ - ' "$log" | grep -c '# SKIP')))
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		bad=1
	fi
	if [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ]; then
		bad=1
	fi
	echo "$ok $bad"
}
