#!/usr/bin/env bash
# TAP (PostgreSQL::Test::Cluster): each test starts its own servers.
# majors: all
. "$TXB_ROOT/tools/results.sh"
cd "$TXB_SRC" || exit 1
log="$TXB_WORK/tap.log"
PROVE_FLAGS="--timer" txb_make_installcheck "$log" REGRESS= ISOLATION= \
	PROVE_FLAGS="--timer"
if ! grep -q '^Result: PASS' "$log"; then
	for f in tmp_check/log/regress_log_*; do
		[ -f "$f" ] || continue
		echo "--- $f (last 40 lines)"
		tail -n 40 "$f"
	done
fi
read -r p f < <(txb_count_prove "$log")
txb_result tap "$p" "$f"
[ "$f" -eq 0 ]
