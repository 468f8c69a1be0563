#!/usr/bin/env bash
# The PgBouncer guide (docs/guides/pgbouncer.md): a real PgBouncer in
# transaction pooling mode (pgbouncer.ini) in front of the server; two
# producers and two workers through it at once.  While both wait, the
# workers' pool has 2 active server connections (SHOW POOLS); the worker of
# the committed order then reads it (on whatever server connection), the
# worker of the rolled-back one gets "aborted".
. "$TXB_ROOT/docs/samples/lib.sh"

here=$TXB_ROOT/docs/samples/pgbouncer
bdir=$SAMPLE_DIR/pgbouncer
mkdir -p "$bdir"
sample_db shop
sample_psql shop "CREATE TABLE orders (id serial PRIMARY KEY, item text)"

BOUNCER_PORT=$(txb_free_port)
export BOUNCER_PORT
sed -e "s#SERVER_HOST#$PGHOST#g" -e "s#SERVER_PORT#$PGPORT#g" -e "s#BOUNCER_PORT#$BOUNCER_PORT#" \
	"$here/pgbouncer.ini" >"$bdir/pgbouncer.ini"
printf 'logfile = %s\npidfile = %s\n' "$bdir/pgbouncer.log" "$bdir/pgbouncer.pid" >>"$bdir/pgbouncer.ini"
echo '"postgres" ""' >"$bdir/userlist.txt"
chown -R postgres: "$bdir"
# PgBouncer refuses to run as root.
(cd "$bdir" && runuser -u postgres -- pgbouncer -d pgbouncer.ini) || sample_fail "pgbouncer" "$bdir/pgbouncer.log"
txb_on_exit "kill \$(cat $bdir/pgbouncer.pid) 2>/dev/null"
txb_wait_for "psql -X -At 'host=127.0.0.1 port=$BOUNCER_PORT dbname=shop' -c 'SELECT 1'" 1 ||
	sample_fail "pgbouncer does not answer" "$bdir/pgbouncer.log"

export PGUSER=postgres
tokens=() ids=() ppids=() fds=() wpids=()
for i in 0 1; do
	# Producer i reads its answer from a FIFO and writes its token line to a file.
	mkfifo "$SAMPLE_DIR/answer$i"
	psql "host=127.0.0.1 port=$BOUNCER_PORT dbname=shop" -X -q -f "$here/producer.psql" \
		<"$SAMPLE_DIR/answer$i" >"$SAMPLE_DIR/producer$i.out" 2>&1 &
	ppids+=($!)
	exec {fd}>"$SAMPLE_DIR/answer$i"
	fds+=("$fd")
	sample_wait_log "$SAMPLE_DIR/producer$i.out" '^[0-9]+ [0-9]+$'
	set -- $(head -1 "$SAMPLE_DIR/producer$i.out")
	tokens+=("$1") ids+=("$2")
	bash "$here/worker.sh" "$1" "$2" >"$SAMPLE_DIR/worker$i.out" 2>&1 &
	wpids+=($!)
done
for t in "${tokens[@]}"; do sample_wait_blocked shop "$t"; done
# SHOW POOLS, read by column name (the columns differ between versions).
pools=$(psql -X -A -F ' ' "host=127.0.0.1 port=$BOUNCER_PORT dbname=pgbouncer" -c "SHOW POOLS" |
	awk 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	     $1 == "shop_workers" { print "sv_active=" $col["sv_active"] }')
echo "both workers waiting through PgBouncer; shop_workers pool: $pools"
[ "$pools" = sv_active=2 ] || sample_fail "SHOW POOLS: $pools"

answers=(COMMIT ROLLBACK)
for i in 0 1; do
	echo "${answers[$i]}" >&"${fds[$i]}"
	wait "${ppids[$i]}" || sample_fail "producer $i failed" "$SAMPLE_DIR/producer$i.out"
done
for i in 0 1; do wait "${wpids[$i]}" || sample_fail "worker $i failed" "$SAMPLE_DIR/worker$i.out"; done
[ "$(cat "$SAMPLE_DIR/worker0.out")" = "shipping book" ] || sample_fail "worker 0: $(cat "$SAMPLE_DIR/worker0.out")"
[ "$(cat "$SAMPLE_DIR/worker1.out")" = aborted ] || sample_fail "worker 1: $(cat "$SAMPLE_DIR/worker1.out")"
echo "token ${tokens[0]} COMMIT: $(cat "$SAMPLE_DIR/worker0.out"); token ${tokens[1]} ROLLBACK: $(cat "$SAMPLE_DIR/worker1.out")"
echo "pgbouncer: ok"
