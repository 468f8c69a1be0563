#!/usr/bin/env bash
# pgTAP: assertions about the SQL surface, run with pg_prove.
. "$TXB_ROOT/tools/results.sh"
log="$TXB_WORK/pgtap.log"
psql -X -q -v ON_ERROR_STOP=1 -c 'DROP DATABASE IF EXISTS txb_pgtap' \
	-c 'CREATE DATABASE txb_pgtap' >/dev/null || exit 1
psql -X -q -v ON_ERROR_STOP=1 -d txb_pgtap \
	-c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION tx_barrier' >/dev/null || exit 1
pg_prove -d txb_pgtap "$TXB_SRC"/t/pgtap/*.sql 2>&1 | tee "$log"
read -r p f < <(txb_count_prove "$log")
txb_result pgtap "$p" "$f"
[ "$f" -eq 0 ]
