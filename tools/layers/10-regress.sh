#!/usr/bin/env bash
# pg_regress: the SQL surface, bad input, single-session behaviour.
# majors: all
. "$TXB_ROOT/tools/results.sh"
log="$TXB_WORK/regress.log"
txb_make_installcheck "$log" ISOLATION= TAP_TESTS=
[ -f "$TXB_SRC/regression.diffs" ] && cat "$TXB_SRC/regression.diffs"
expected=$(txb_make_var REGRESS | wc -w)
read -r p f < <(txb_count_pg_regress "$log" "$expected")
txb_result regress "$p" "$f"
[ "$f" -eq 0 ]
