#!/usr/bin/env bash
# Isolation tester: two or more sessions, one blocked on another.  The specs
# of ISOLATION run on the shared server; those of ISOLATION_PRELOADED need
# tx_barrier in shared_preload_libraries and run on a second, throwaway
# server that preloads it.
# majors: all
. "$TXB_ROOT/tools/cluster.sh"
. "$TXB_ROOT/tools/results.sh"
log="$TXB_WORK/isolation.log"
txb_make_installcheck "$log" REGRESS= TAP_TESTS=
[ -f "$TXB_SRC/output_iso/regression.diffs" ] && cat "$TXB_SRC/output_iso/regression.diffs"
expected=$(txb_make_var ISOLATION | wc -w)
read -r p f < <(txb_count_pg_regress "$log" "$expected")

preloaded=$(txb_make_var ISOLATION_PRELOADED)
if [ -n "$preloaded" ]; then
	plog="$TXB_WORK/isolation-preloaded.log"
	pdir="$TXB_WORK/pg-preloaded"
	rm -rf "$pdir"
	mkdir -p "$pdir"
	txb_on_exit "txb_cluster_stop '$pdir'"
	if txb_cluster_start_free "$pdir" pport "shared_preload_libraries = 'tx_barrier'"; then
		PGHOST=$pdir PGPORT=$pport txb_make_installcheck "$plog" REGRESS= TAP_TESTS= \
			ISOLATION="$preloaded"
		[ -f "$TXB_SRC/output_iso/regression.diffs" ] && cat "$TXB_SRC/output_iso/regression.diffs"
		read -r pp pf < <(txb_count_pg_regress "$plog" "$(echo "$preloaded" | wc -w)")
	else
		pp=0
		pf=$(echo "$preloaded" | wc -w)
	fi
	txb_cluster_stop "$pdir"
	p=$((p + pp))
	f=$((f + pf))
fi
txb_result isolation "$p" "$f"
[ "$f" -eq 0 ]
