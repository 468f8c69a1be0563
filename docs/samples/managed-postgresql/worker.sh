# The worker, unchanged too: txb (or any client) on the same database.
txb -d "$WORKER_URL" --timeout 30s run "$TOKEN" -- \
	psql "$WORKER_URL" -X -At -c "SELECT 'shipping ' || item FROM orders WHERE id = $ORDER_ID"
