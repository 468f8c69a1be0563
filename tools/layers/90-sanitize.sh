#!/usr/bin/env bash
# The short sanitizer run: regress and isolation against a PostgreSQL 16
# built with AddressSanitizer, UndefinedBehaviorSanitizer and assertions,
# the extension instrumented the same way (tools/sanitize.sh; the full run
# adds the TAP layer and a plain --enable-cassert build).  The server build
# is cached in /opt/tx_barrier/pg: about ten minutes on two cores the first
# time, seconds afterwards.
. "$TXB_ROOT/tools/results.sh"
log="$TXB_WORK/sanitize.log"
TXB_SANITIZE_LAYERS="regress isolation" "$TXB_ROOT/tools/sanitize.sh" 16 asan 2>&1 | tee "$log"
read -r p f < <(sed -n 's/^sanitize: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$log" | tail -1)
txb_result sanitize "${p:-0}" "${f:-1}"
[ "${f:-1}" -eq 0 ]
