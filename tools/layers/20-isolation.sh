#!/usr/bin/env bash
# Isolation tester: two or more sessions, one blocked on another.
# majors: all
. "$TXB_ROOT/tools/results.sh"
log="$TXB_WORK/isolation.log"
txb_make_installcheck "$log" REGRESS= TAP_TESTS=
[ -f "$TXB_SRC/output_iso/regression.diffs" ] && cat "$TXB_SRC/output_iso/regression.diffs"
expected=$(txb_make_var ISOLATION | wc -w)
read -r p f < <(txb_count_pg_regress "$log" "$expected")
txb_result isolation "$p" "$f"
[ "$f" -eq 0 ]
