#!/usr/bin/env bash
# The comparison benchmark (bench/compare.sh) in smoke mode: a few rounds of
# each measurement, so that the benchmark code cannot rot.  It checks that
# the programs ran and that every figure of the report is a number and every
# table complete; the figures themselves are not judged (timed tests prove
# nothing about performance).  Runs on the host's 15 only, on its own
# throwaway cluster; the report goes to a scratch directory.
. "$TXB_ROOT/tools/results.sh"
set -u

out="$TXB_WORK/bench-smoke"
rm -rf "$out"
mkdir -p "$out"
chmod 755 "$out"
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "bench-smoke: ok - $1"; }
fail() { failed=$((failed + 1)); echo "bench-smoke: FAILED - $1"; }
check() {	# DESCRIPTION COMMAND...
	local d=$1
	shift
	if "$@"; then pass "$d"; else fail "$d"; fi
}
number() { [[ $1 =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; }

iters=5 rounds=2
if TXB_BENCH_SMOKE=1 TXB_BENCH_NO_INSTALL=1 TXB_BENCH_OUT="$out" \
	TXB_BENCH_WAKE_ITERS=$iters TXB_BENCH_WAKE_ROUNDS=$rounds \
	"$TXB_ROOT/bench/compare.sh" >"$out/run.log" 2>&1; then
	pass "bench/compare.sh in smoke mode exits 0"
else
	fail "bench/compare.sh in smoke mode exits 0"
	tail -30 "$out/run.log"
fi

# Wake latency: one RESULT line per mechanism and outcome, all numbers.
for mo in wait:commit poll:commit poll10:commit marker:commit notify:commit \
	wait:abort poll:abort poll10:abort; do
	line=$(grep "^RESULT method=${mo%:*} outcome=${mo#*:} " "$out/benchmarks/wake.results" 2>/dev/null)
	ok=1
	for f in p50 p90 p99 max round_p50_min round_p50_max; do
		v=$(sed -n "s/.* $f=\([^ ]*\).*/\1/p" <<<"$line")
		number "$v" || ok=0
	done
	[ "$(sed -n 's/.* n=\([0-9]*\).*/\1/p' <<<"$line")" = $((iters * rounds)) ] || ok=0
	check "wake latency ${mo/:/ }: p50..max are numbers over $((iters * rounds)) wake-ups" [ $ok = 1 ]
done

# Producer cost: every variant at every client count has a numeric tps.
for c in 1 8 32; do
	for v in baseline late-durable late-reservation late-relaxed early-durable early-reservation early-relaxed marker; do
		tps=$(awk -v c=$c -v v=$v '$1 == c && $2 == v { print $4 }' "$out/benchmarks/tps.txt" 2>/dev/null)
		check "pgbench $v at $c clients gave a tps figure" number "$tps"
	done
done

# The report: both tables complete, no empty or non-numeric figure.
md="$out/benchmarks.md"
wake_rows=$(grep -c '^| [^|]* | \(commit\|abort\) | ' "$md" 2>/dev/null)
check "report: wake table has 10 rows (5 mechanisms x 2 outcomes)" [ "${wake_rows:-0}" = 10 ]
bad=$(grep '^| [^|]* | \(commit\|abort\) | ' "$md" | grep -v 'cannot tell' |
	awk -F' [|] ' '{ for (i = 3; i <= 6; i++) if ($i !~ /^-?[0-9]+$/) print }' | wc -l)
check "report: every wake figure is a number" [ "$bad" = 0 ]
check "report: marker and NOTIFY say they cannot tell an abort" \
	[ "$(grep -c '| abort | cannot tell |' "$md")" = 2 ]
cost_rows=$(grep -cE '^\| (baseline|late-durable|late-reservation|late-relaxed|early-durable|early-reservation|early-relaxed|marker) \| [0-9]' "$md")
check "report: cost table has 8 rows" [ "$cost_rows" = 8 ]
bad=$(grep -E '^\| (baseline|late-durable|late-reservation|late-relaxed|early-durable|early-reservation|early-relaxed|marker) \| [0-9]' "$md" |
	awk -F' [|] ' '{ sub(/ [|]$/, ""); if (NF != 10) { print; next }
		for (i = 2; i <= 8; i += 3) if ($i !~ /^[0-9]+$/ || $(i + 1) !~ /^[0-9]+\.[0-9]+$/ || $(i + 2) !~ /^[0-9]+ %$/) print }' | wc -l)
check "report: every cost cell (tps, ratio, spread) is well formed" [ "$bad" = 0 ]
check "report: baseline ratio is 1.000 at every client count" \
	[ "$(grep -c '^| baseline | [0-9]* | 1.000 | [0-9]* % | [0-9]* | 1.000 | [0-9]* % | [0-9]* | 1.000 |' "$md")" = 1 ]
check "report: describes the machine" grep -q '^| CPUs (nproc) | [0-9]' "$md"
for png in wake-commit wake-abort producer-cost; do
	check "plot $png.png is a PNG" [ "$(head -c 8 "$out/benchmarks/$png.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]
done

txb_result bench-smoke "$passed" "$failed"
[ "$failed" -eq 0 ]
