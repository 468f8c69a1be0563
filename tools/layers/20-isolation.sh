#!/usr/bin/env bash
# Isolation tester: two or more sessions, one blocked on another.
. "$TXB_ROOT/tools/results.sh"
cd "$TXB_SRC" || exit 1
log="$TXB_WORK/isolation.log"
runuser -u postgres -- env PATH="$PATH" make -s installcheck REGRESS= TAP_TESTS= \
	2>&1 | tee "$log"
[ -f output_iso/regression.diffs ] && cat output_iso/regression.diffs
read -r p f < <(txb_count_pg_regress "$log")
txb_result isolation "$p" "$f"
[ "$f" -eq 0 ]
