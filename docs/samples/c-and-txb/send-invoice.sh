#!/bin/sh
# A worker's command in shell: txb waits for the transaction behind $1 and
# runs the command only if it committed (exit 0 committed, 1 aborted, 2 still
# in progress after the timeout, 3 error).
txb --timeout 30s run "$1" -- \
	psql -X -At -c "SELECT 'sending invoice ' || id || ' of ' || amount FROM invoices WHERE id = $2"
