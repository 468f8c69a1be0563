# Shell functions the benchmark scripts share (bench/run.sh,
# bench/compare.sh, bench/wait_any/run.sh, bench/scale/run.sh).  Source it
# after tools/cluster.sh; q needs $PSQL.

# bench_require_root WHY: exits 2 unless run as root (WHY: what needs it).
bench_require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "run as root ($1)" >&2
		exit 2
	fi
}

# bench_install: the Debian packages (tools/deps.sh) and this checkout's
# extension (tools/install.sh), unless TXB_NO_INSTALL is set.
bench_install() {
	if [ -z "${TXB_NO_INSTALL:-}" ]; then
		"$TXB_ROOT/tools/deps.sh" >/dev/null
		"$TXB_ROOT/tools/install.sh"
	fi
}

# q SQL: one statement on the benchmark's server, unaligned, tuples only.
q() { "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

# median of the numbers on stdin ("nan" when there are none)
median() {
	sort -g | awk '{v[NR] = $1} END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# div A B [FORMAT]: A / B, or n/a when B is 0
div() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { if (b == 0) print "n/a"; else printf f "\n", a / b }'; }
