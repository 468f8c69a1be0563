#!/usr/bin/env bash
# The short sanitizer run: regress and isolation with the extension built
# with AddressSanitizer and UndefinedBehaviorSanitizer, in a PostgreSQL 16
# built with assertions (tools/sanitize.sh 16 asan; the full run adds the
# TAP layer, a plain --enable-cassert run, and asan-server, a server that is
# itself instrumented).  The cassert server is the one the matrix's 16 uses,
# cached in /opt/tx_barrier/pg.
. "$TXB_ROOT/tools/results.sh"
log="$TXB_WORK/sanitize.log"
TXB_SANITIZE_LAYERS="regress isolation" "$TXB_ROOT/tools/sanitize.sh" 16 asan 2>&1 | tee "$log"
read -r p f < <(sed -n 's/^sanitize: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$log" | tail -1)
txb_result sanitize "${p:-0}" "${f:-1}"
[ "${f:-1}" -eq 0 ]
