# Shell functions the benchmark scripts share (bench/run.sh,
# bench/compare.sh).  Source it after tools/cluster.sh; q needs $PSQL.

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
