#!/usr/bin/env bash
# pgTAP: assertions about the SQL surface, run with pg_prove.
# majors: all
. "$TXB_ROOT/tools/results.sh"
# pgTAP is SQL only: on a server without it, install the SQL of Debian's
# build (postgresql-15-pgtap), which is the same for every major from 15.
ext="$("$PG_CONFIG" --sharedir)/extension"
if [ ! -f "$ext/pgtap.control" ]; then
	cp /usr/share/postgresql/15/extension/pgtap* "$ext"/ || exit 1
fi
log="$TXB_WORK/pgtap.log"
psql -X -q -v ON_ERROR_STOP=1 -c 'DROP DATABASE IF EXISTS txb_pgtap' \
	-c 'CREATE DATABASE txb_pgtap' >/dev/null || exit 1
psql -X -q -v ON_ERROR_STOP=1 -d txb_pgtap \
	-c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION tx_barrier' >/dev/null || exit 1
pg_prove -d txb_pgtap "$TXB_SRC"/t/pgtap/*.sql 2>&1 | tee "$log"
read -r p f < <(txb_count_prove "$log")
txb_result pgtap "$p" "$f"
[ "$f" -eq 0 ]
