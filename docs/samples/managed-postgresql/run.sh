#!/usr/bin/env bash
# The managed PostgreSQL guide (docs/guides/managed-postgresql.md): the
# portable edition installed by a non-superuser database owner with psql -f
# (no C extension in that database), used unchanged by the Python package
# (producer) and txb (worker, another non-superuser role): the worker
# runs its command after COMMIT, not after ROLLBACK; a re-install (the
# upgrade path) keeps an outstanding token; the token is scoped to its
# database; barrier_stats() is not provided.
. "$TXB_ROOT/docs/samples/lib.sh"

here=$TXB_ROOT/docs/samples/managed-postgresql
sample_role shop_owner NOSUPERUSER
sample_role worker NOSUPERUSER
sample_db shop noext
sample_db shop_other noext
sample_psql postgres "ALTER DATABASE shop OWNER TO shop_owner" \
	"ALTER DATABASE shop_other OWNER TO shop_owner"
sample_python_package
export DATABASE_URL="host=$PGHOST port=$PGPORT user=shop_owner dbname=shop"
export WORKER_URL="host=$PGHOST port=$PGPORT user=worker dbname=shop"

echo "== install.sh, as shop_owner"
(cd "$TXB_ROOT" && sed "s#setup.sql#$here/setup.sql#" "$here/install.sh" | bash -e) 2>&1 | tee "$SAMPLE_DIR/install.log"
[ "$(sample_psql shop "SELECT count(*) FROM pg_extension WHERE extname LIKE 'tx_barrier%'")" = 0 ]
version=$(sample_psql shop "SELECT barrier_portable_version()")
[ "$version" = "$(sed -n 's/^EXTVERSION *= *//p' "$TXB_ROOT/Makefile")" ] || sample_fail "version $version"
echo "portable edition $version in schema tx_barrier, no extension"

# round ANSWER EXPECTED_EXIT [BETWEEN]: producer.py, worker.sh blocked on
# its token, BETWEEN run, then ANSWER.
round() {
	local answer=$1 want=$2 between=${3:-} line rc=0
	coproc PRODUCER { "$PY" "$here/producer.py"; }
	local_ppid=$PRODUCER_PID
	IFS= read -r -t 60 line <&"${PRODUCER[0]}" || sample_fail "no line from producer.py"
	[[ $line =~ ^order\ ([0-9]+)\ token\ ([0-9]+)$ ]] || sample_fail "bad line: $line"
	export ORDER_ID=${BASH_REMATCH[1]} TOKEN=${BASH_REMATCH[2]}
	bash "$here/worker.sh" >"$SAMPLE_DIR/worker.out" 2>&1 &
	local wpid=$!
	sample_wait_blocked shop "$TOKEN"
	[ -z "$between" ] || eval "$between"
	echo "$answer" >&"${PRODUCER[1]}"
	wait "$local_ppid" || sample_fail "producer.py failed"
	wait "$wpid" || rc=$?
	[ "$rc" = "$want" ] || sample_fail "worker.sh exited $rc, not $want" "$SAMPLE_DIR/worker.out"
	echo "token $TOKEN, $answer: worker.sh exit $rc: $(cat "$SAMPLE_DIR/worker.out")"
}
round COMMIT 0
grep -qx 'shipping book' "$SAMPLE_DIR/worker.out"
round ROLLBACK 1
grep -q 'aborted' "$SAMPLE_DIR/worker.out"

echo "== a re-install while a token is outstanding (the upgrade path)"
round COMMIT 0 '(cd "$TXB_ROOT" && psql "$DATABASE_URL" -X -q -v schema=tx_barrier -f portable/tx_barrier_portable.sql 2>&1)'
grep -qx 'shipping book' "$SAMPLE_DIR/worker.out"

echo "== the token in another database"
(cd "$TXB_ROOT" && psql "host=$PGHOST port=$PGPORT user=shop_owner dbname=shop_other" -X -q -v schema=tx_barrier \
	-f portable/tx_barrier_portable.sql 2>/dev/null)
other=$(psql -X -At "host=$PGHOST port=$PGPORT user=shop_owner dbname=shop_other" \
	-c "SELECT tx_barrier.barrier_status('$TOKEN')" 2>&1) || true
echo "shop_other says: $other"
case $other in aborted | *'no longer known'*) ;; *) sample_fail "token committed in shop read '$other' in shop_other" ;; esac

echo "== barrier_stats() is not provided"
if out=$(psql -X -At "$DATABASE_URL" -c "SELECT barrier_stats()" 2>&1); then
	sample_fail "barrier_stats() answered: $out"
fi
grep -q 'function barrier_stats() does not exist' <<<"$out"
echo "managed-postgresql: ok"
