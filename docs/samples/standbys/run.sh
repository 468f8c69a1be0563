#!/usr/bin/env bash
# The hot standby guide (docs/guides/standbys.md): a primary and a streaming
# hot standby of its own (tools/cluster.sh); a producer on the primary, a
# worker (worker.sh) waiting on the standby.  The worker shows as waiting
# there (wait_event_type Extension on 15-18); after COMMIT its next query on
# the standby sees the row; after ROLLBACK it gets "aborted";
# barrier_enqueue() on the standby fails with 25006.
. "$TXB_ROOT/docs/samples/lib.sh"

here=$TXB_ROOT/docs/samples/standbys
txb_scratch top standbys
mkdir -p "$top/primary" "$top/standby"
txb_cluster_start_free "$top/primary" pport || sample_fail "primary did not start"
sport=$(txb_free_port)
primary="host=$top/primary port=$pport user=postgres dbname=postgres"
psql "$primary" -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION tx_barrier" \
	-c "CREATE TABLE notes (id serial PRIMARY KEY, body text)"
txb_standby_start "$primary" "$top/standby" "$sport" || sample_fail "standby did not start"
export STANDBY="host=$top/standby port=$sport user=postgres dbname=postgres"

round() {	# ANSWER EXPECTED_OUTPUT
	local answer=$1 want=$2 line
	coproc PRODUCER { psql "$primary" -X -q -f "$here/producer.psql"; }
	local ppid=$PRODUCER_PID
	IFS= read -r -t 60 line <&"${PRODUCER[0]}" || sample_fail "no token"
	set -- $line
	bash "$here/worker.sh" "$1" "$2" >"$SAMPLE_DIR/worker.out" 2>&1 &
	local wpid=$!
	txb_wait_blocked -d "$STANDBY" || sample_fail "worker not waiting on the standby"
	echo "standby: $(psql "$STANDBY" -X -At -c "SELECT wait_event_type || '/' || wait_event FROM pg_stat_activity WHERE query LIKE '%barrier_wait%' AND pid <> pg_backend_pid()")"
	echo "$answer" >&"${PRODUCER[1]}"
	wait "$ppid" || sample_fail "producer failed"
	wait "$wpid" || sample_fail "worker failed" "$SAMPLE_DIR/worker.out"
	[ "$(cat "$SAMPLE_DIR/worker.out")" = "$want" ] || sample_fail "worker: $(cat "$SAMPLE_DIR/worker.out")"
	echo "token $1, $answer: $(cat "$SAMPLE_DIR/worker.out")"
}
round COMMIT "read on the standby: hello"
round ROLLBACK aborted

echo "== barrier_enqueue() on the standby"
if out=$(psql "$STANDBY" -X -At -v VERBOSITY=verbose -c "SELECT barrier_enqueue()" 2>&1); then
	sample_fail "barrier_enqueue() worked on a standby: $out"
fi
grep -q '25006' <<<"$out" || sample_fail "not 25006: $out"
echo "$out" | head -1
echo "standbys: ok"
