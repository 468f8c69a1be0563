#!/usr/bin/env bash
# One-minute randomized soak with crashes (tools/soak.sh): tokens taken at
# random points, the server crashed and restarted every few seconds, every
# token's state and every wait's answer checked against the rows left.
# A minute on the host's PostgreSQL 15, half a minute on the other majors.
# majors: all
. "$TXB_ROOT/tools/results.sh"
log="$TXB_WORK/soak.log"
. "$TXB_ROOT/tools/cluster.sh"
seconds=${TXB_SOAK_SECONDS:-$([ "$TXB_PG_MAJOR" = 15 ] && echo 60 || echo 30)}
"$TXB_ROOT/tools/soak.sh" --seconds "$seconds" 2>&1 | tee "$log"
read -r p f < <(sed -n 's/^soak: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$log" | tail -1)
txb_result soak "${p:-0}" "${f:-1}"
[ "${f:-1}" -eq 0 ]
