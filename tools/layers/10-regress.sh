#!/usr/bin/env bash
# pg_regress: the SQL surface, bad input, single-session behaviour.
. "$TXB_ROOT/tools/results.sh"
cd "$TXB_SRC" || exit 1
log="$TXB_WORK/regress.log"
runuser -u postgres -- env PATH="$PATH" make -s installcheck ISOLATION= TAP_TESTS= \
	2>&1 | tee "$log"
[ -f regression.diffs ] && cat regression.diffs
read -r p f < <(txb_count_pg_regress "$log")
txb_result regress "$p" "$f"
[ "$f" -eq 0 ]
