# worker.sh TOKEN ORDER_ID, through the workers' pool.  Each statement may
# run on another server connection: the wait is a plain function call.
pool="host=127.0.0.1 port=$BOUNCER_PORT dbname=shop_workers"
state=$(psql "$pool" -X -At -c "SELECT barrier_wait('$1', '30s')")
if [ "$state" = committed ]; then
	psql "$pool" -X -At -c "SELECT 'shipping ' || item FROM orders WHERE id = $2"
else
	echo "$state"
fi
