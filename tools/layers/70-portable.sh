#!/usr/bin/env bash
# majors: all
#
# The portable edition (portable/tx_barrier_portable.sql), installed with
# psql -f by a role that is not a superuser:
#   install      non-superuser install, privileges, hostile search_path;
#                a second install is an upgrade (keeps an open transaction's
#                token), the version function and the NOTICE name EXTVERSION
#   sql          the SQL surface and every SQLSTATE, one session
#   isolation    the C edition's isolation specs (specs/), unchanged
#   crash        own cluster: a token whose transaction was lost in an
#                immediate crash reads 'aborted' although its xid was
#                reused by a committed transaction (that read 'committed'
#                by xid); killed producer; prepared transaction across a
#                restart; the marker ring emptied by TRUNCATE as the xid
#                counter moves on (pg_resetwal -x), and expired tokens;
#                before the xid is reused, the lost token (ahead of the
#                server) reads aborted
#   standby      a streaming standby answers by polling
#   pgbouncer    producers and waiters through transaction pooling
#   clients      the C client layer (40-client), the Python adapter
#                layer (50-python) and the Ruby client layer (65-ruby, on
#                Debian 12's stack) with TXB_INSTALL_SQL pointing here
#                (TXB_PORTABLE_CLIENT_LAYERS names them; empty skips them)
. "$TXB_ROOT/tools/results.sh"
. "$TXB_ROOT/tools/cluster.sh"
set -u

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PG_BINDIR=${PG_BINDIR:-$("$PG_CONFIG" --bindir)}
export PG_BINDIR
SQL="$TXB_ROOT/portable/tx_barrier_portable.sql"
EXTVERSION=$(sed -n 's/^EXTVERSION *= *//p' "$TXB_ROOT/Makefile")
dir="$TXB_WORK/portable"
rm -rf "$dir"
mkdir -p "$dir"
chmod 755 "$dir"
passed=0
failed=0

pass() { passed=$((passed + 1)); echo "portable: ok - $1"; }
fail() { failed=$((failed + 1)); echo "portable: FAILED - $1"; }
# is DESCRIPTION GOT EXPECTED
is() {
	if [ "$2" = "$3" ]; then
		pass "$1"
	else
		fail "$1"
		echo "    got:      $2"
		echo "    expected: $3"
	fi
}
# q [psql args...] -c SQL: one value, or "ERROR <sqlstate>"
q() {
	local out
	out=$(psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose "$@" 2>&1)
	if [ $? -ne 0 ]; then
		echo "ERROR $(echo "$out" | sed -n 's/^.*ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p' | head -1)"
	else
		echo "$out"
	fi
}

# ------------------------------------------------------------ install
DB=txb_portable
psql -X -q -c "DROP DATABASE IF EXISTS $DB" -c "DROP ROLE IF EXISTS txb_owner" \
	-c "DROP ROLE IF EXISTS txb_app" -c "CREATE ROLE txb_owner LOGIN" \
	-c "CREATE ROLE txb_app LOGIN" -c "CREATE DATABASE $DB" \
	-c "GRANT CREATE ON DATABASE $DB TO txb_owner" >/dev/null 2>&1
if psql -X -q -U txb_owner -d $DB -v schema=txb -f "$SQL" >"$dir/install.log" 2>&1; then
	pass "psql -f by a role that is neither superuser nor database owner"
else
	cat "$dir/install.log"
	fail "psql -f by a role that is neither superuser nor database owner"
fi
is "every object belongs to the installing role" \
	"$(q -d $DB -c "SELECT count(*) FILTER (WHERE r.rolname <> 'txb_owner') || '/' || count(*)
	   FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
	  WHERE p.pronamespace = 'txb'::regnamespace")" "0/10"
is "the API functions are SECURITY DEFINER with a pinned search_path" \
	"$(q -d $DB -c "SELECT string_agg(proname || ':' || prosecdef || ':' || array_to_string(proconfig, ';'), ' ' ORDER BY proname)
	   FROM pg_proc WHERE pronamespace = 'txb'::regnamespace AND proname IN ('barrier_enqueue', 'barrier_status')")" \
	"barrier_enqueue:true:search_path=txb, pg_catalog, pg_temp barrier_status:true:search_path=txb, pg_catalog, pg_temp"
is "signatures are the C edition's" \
	"$(q -d $DB -c "SELECT string_agg(p.oid::regprocedure::text || '->' || pg_get_function_result(p.oid), ' ' ORDER BY 1)
	   FROM pg_proc p WHERE pronamespace = 'txb'::regnamespace AND proname IN ('barrier_enqueue', 'barrier_status', 'barrier_wait', 'barrier_wait_all')")" \
	"txb.barrier_enqueue()->xid8 txb.barrier_status(xid8)->txb.barrier_state txb.barrier_wait(xid8,interval)->txb.barrier_state txb.barrier_wait_all(xid8[],interval)->SETOF record"
psql -X -q -U txb_owner -d $DB -c "GRANT USAGE ON SCHEMA txb TO txb_app" >/dev/null
A=(-U txb_app -d "$DB")
is "a plain role with USAGE enqueues and waits" \
	"$(q "${A[@]}" -c "SET search_path = txb" -c "SELECT barrier_wait(barrier_enqueue())")" "in progress"
is "... but cannot forge a marker (42501)" \
	"$(q "${A[@]}" -c "INSERT INTO txb.barrier_marker VALUES (0, 42)")" "ERROR 42501"
is "... nor call the internals (42501)" \
	"$(q "${A[@]}" -c "SELECT txb.barrier_resolve('3', 0)")" "ERROR 42501"
# a hostile search_path: objects that shadow what the functions use
tok=$(q "${A[@]}" -c "SELECT txb.barrier_enqueue()")
is "hostile search_path and temp tables do not reach the functions" \
	"$(q "${A[@]}" -c "CREATE TEMP TABLE barrier_marker (slot int2, token int8)" \
		-c "CREATE TEMP TABLE barrier_ring (slot int2, emptied_for int8)" \
		-c "SET search_path = pg_temp, public" \
		-c "SELECT txb.barrier_status('$tok') || ',' || txb.barrier_wait(txb.barrier_enqueue(), '0')")" \
	"committed,in progress"

# A second install into the same schema is an upgrade: types and tables are
# kept, with the tokens of a transaction that is open meanwhile.
coproc PROD { psql -X -q -At -U txb_owner -d $DB 2>&1; }
prod=$PROD_PID
echo "SET search_path = txb; BEGIN; SELECT barrier_enqueue();" >&"${PROD[1]}"
IFS= read -r -t 120 otok <&"${PROD[0]}"
if timeout 60 psql -X -q -U txb_owner -d $DB -v schema=txb -f "$SQL" >"$dir/reinstall.log" 2>&1; then
	pass "a second install into the same schema, while a producer's transaction is open"
else
	cat "$dir/reinstall.log"
	fail "a second install into the same schema, while a producer's transaction is open"
fi
is "... its NOTICE names the version" \
	"$(sed -n 's/.*NOTICE:  \(tx_barrier portable edition .*\)/\1/p' "$dir/reinstall.log")" \
	"tx_barrier portable edition $EXTVERSION installed in schema txb"
is "... the open transaction's token: in progress before its COMMIT" \
	"$(q "${A[@]}" -c "SELECT txb.barrier_status('$otok')")" "in progress"
echo "COMMIT;" >&"${PROD[1]}"
echo '\q' >&"${PROD[1]}"
wait "$prod" 2>/dev/null
is "... and committed after it" "$(q "${A[@]}" -c "SELECT txb.barrier_wait('$otok', '10s')")" "committed"
is "barrier_portable_version() = EXTVERSION" \
	"$(q "${A[@]}" -c "SELECT txb.barrier_portable_version()")" "$EXTVERSION"
is "... and the objects are the same: 10 functions, 1 type, 10 tables, 8 ring rows" \
	"$(q -d $DB -c "SELECT (SELECT count(*) FROM pg_proc WHERE pronamespace = 'txb'::regnamespace) || ',' ||
		(SELECT count(*) FROM pg_type WHERE typnamespace = 'txb'::regnamespace AND typtype = 'e') || ',' ||
		(SELECT count(*) FROM pg_class WHERE relnamespace = 'txb'::regnamespace AND relkind IN ('r', 'p')) || ',' ||
		(SELECT count(*) FROM txb.barrier_ring)")" "10,1,10,8"

# The pg_tle body (the script without its psql-only lines, as
# portable/pg_tle_install.psql passes it) as a real extension script, where
# the server can find extensions outside its own directory (18+).
if [ "$(q -d $DB -c "SELECT count(*) FROM pg_settings WHERE name = 'extension_control_path'")" = 1 ]; then
	mkdir -p "$dir/ext/extension"
	sed -e '/-- psql only$/d' -e '/^\\/d' "$SQL" >"$dir/ext/extension/tx_barrier_portable--$EXTVERSION.sql"
	printf "default_version = '%s'\nrelocatable = false\nsuperuser = false\n" "$EXTVERSION" \
		>"$dir/ext/extension/tx_barrier_portable.control"
	chmod -R a+rX "$dir/ext"
	is "the pg_tle body works as a CREATE EXTENSION script" \
		"$(q -d $DB -c "SET extension_control_path = '$dir/ext:\$system'" \
			-c "CREATE SCHEMA txb_ext" -c "CREATE EXTENSION tx_barrier_portable SCHEMA txb_ext" \
			-c "SELECT txb_ext.barrier_wait(txb_ext.barrier_enqueue()) || ',' || count(*) FROM pg_depend
				WHERE refobjid = (SELECT oid FROM pg_extension WHERE extname = 'tx_barrier_portable') AND deptype = 'e'
				AND classid = 'pg_proc'::regclass" \
			-c "DROP EXTENSION tx_barrier_portable" -c "DROP SCHEMA txb_ext")" "in progress,10"
fi

# ------------------------------------------------------------ sql
S=(-U txb_app -d "$DB" -c "SET search_path = txb")
committed=$(q "${S[@]}" -c "SELECT barrier_enqueue()")
aborted=$(psql -X -q -At "${A[@]}" <<<"SET search_path = txb; BEGIN; SELECT barrier_enqueue(); ROLLBACK;" | sed -n 1p)
is "committed token" "$(q "${S[@]}" -c "SELECT barrier_status('$committed') || ',' || barrier_wait('$committed') || ',' || barrier_wait('$committed', '1s')")" "committed,committed,committed"
is "aborted token" "$(q "${S[@]}" -c "SELECT barrier_status('$aborted') || ',' || barrier_wait('$aborted') || ',' || barrier_wait('$aborted', '0')")" "aborted,aborted,aborted"
is "token layout: nonce above the xid's low 32 bits, below 2^63" \
	"$(q "${S[@]}" -c "SELECT ('$committed'::numeric < 2^63) AND ('$committed'::numeric >= 2^32)")" "t"
is "same (sub)transaction, same token; a savepoint has its own" \
	"$(psql -X -q -At "${A[@]}" <<<"SET search_path = txb; BEGIN; SELECT barrier_enqueue() = barrier_enqueue(); SAVEPOINT s; SELECT barrier_enqueue() AS s \gset
SELECT :'s' = barrier_enqueue()::text; SELECT barrier_status(:'s'); ROLLBACK TO s; SELECT barrier_status(:'s'); COMMIT; SELECT barrier_status(:'s');" | tr '\n' ' ')" \
	"t t in progress aborted aborted "
is "own transaction: in progress at once" \
	"$(psql -X -q -At "${A[@]}" <<<"SET search_path = txb; BEGIN; SELECT barrier_wait(barrier_enqueue()); COMMIT;" | sed -n 1p)" "in progress"
is "wait_all: array order, NULLs, duplicates" \
	"$(q "${S[@]}" -c "SELECT string_agg(coalesce(state::text, 'null'), ',') FROM barrier_wait_all(ARRAY['$committed', NULL, '$aborted', '$committed']::xid8[], '1s')")" \
	"committed,null,aborted,committed"
is "NULL in, NULL out" "$(q "${S[@]}" -c "SELECT (barrier_status(NULL) IS NULL) AND (barrier_wait(NULL) IS NULL) AND (SELECT count(*) FROM barrier_wait_all(NULL)) = 0")" "t"
for bad in "barrier_status('0')" "barrier_status('2')" "barrier_wait('4294967296')" \
	"barrier_status('9223372036854775808')" \
	"barrier_wait('$committed', '-1 ms')" "barrier_wait(NULL, '-1s')"; do
	is "22023: $bad" "$(q "${S[@]}" -c "SELECT $bad")" "ERROR 22023"
done
# A token whose xid is ahead of the server's next xid: no transaction has
# had that xid, so none with that token committed (lost in a crash, see
# below, or never issued here).
ahead=$(q -d $DB -c "SELECT (4294967296 + (pg_snapshot_xmax(pg_current_snapshot())::text::int8 + 1000000) % 4294967296)::text")
is "a token ahead of the next xid: aborted (status, wait, wait_all, READ ONLY wait)" \
	"$(q "${S[@]}" -c "SELECT barrier_status('$ahead') || ',' || barrier_wait('$ahead') || ',' || (SELECT state FROM barrier_wait_all(ARRAY['$ahead']::xid8[]))" -c "SET default_transaction_read_only = on" -c "SELECT barrier_wait('$ahead', '1s')" | tr '\n' ,)" \
	"aborted,aborted,aborted,aborted,"
is "2202E: multidimensional array" "$(q "${S[@]}" -c "SELECT * FROM barrier_wait_all('{{3},{3}}'::xid8[])")" "ERROR 2202E"
is "25006: enqueue in a READ ONLY transaction" \
	"$(q "${S[@]}" -c "SET default_transaction_read_only = on" -c "SELECT barrier_enqueue()")" "ERROR 25006"
is "READ ONLY waiter: answers by polling" \
	"$(q "${S[@]}" -c "SET default_transaction_read_only = on" -c "SELECT barrier_wait('$committed', '1s') || ',' || barrier_wait('$aborted', '1s')")" "committed,aborted"
# expiry: a slot emptied for a later bucket answers 55000, never a guess
slot=$(q -d $DB -c "SELECT (('$aborted'::numeric % 4294967296)::int8 >> 22) % 8")
is "expired token: 55000" \
	"$(q -d $DB -c "BEGIN" -c "UPDATE txb.barrier_ring SET emptied_for = 1000 WHERE slot = $slot" \
		-c "SELECT txb.barrier_status('$aborted')")" "ERROR 55000"

# ------------------------------------------------------------ isolation
# The C edition's specs and expected output, against this database.
psql -X -q -c "ALTER DATABASE $DB SET search_path = \"\$user\", public, txb" \
	-c "GRANT USAGE ON SCHEMA txb TO PUBLIC" -d $DB >/dev/null
iso=$(dirname "$("$PG_CONFIG" --pgxs)")/../test/isolation/pg_isolation_regress
mkdir -p "$dir/iso"
cp -r "$TXB_ROOT/specs" "$TXB_ROOT/expected" "$dir/iso/"
chown -R postgres: "$dir" 2>/dev/null
# The Makefile's ISOLATION list (ISOLATION_PRELOADED's barrier_wait_any
# is the C edition's alone), all but wait_nested_savepoint: the portable
# wait sleeps in the unique check, which waits for the topmost transaction
# once a released savepoint's xid is gone, so it answers at the top level's
# end there (a documented difference, portable/README.md); the answer
# itself is the same.  timeout is a hang guard: a spec that stops (a
# session left in an aborted transaction holds the teardown's locks) fails
# the layer, never the run.
specs=$(txb_make_var ISOLATION | tr ' ' '\n' | grep -vx wait_nested_savepoint | tr '\n' ' ')
iso_rc=0
# shellcheck disable=SC2086
(cd "$dir/iso" && txb_as_owner timeout 900 "$iso" --inputdir=. --outputdir=out --use-existing \
	--dbname=$DB ${PGHOST:+--host=$PGHOST} --port="$PGPORT" --user="$PGUSER" $specs) \
	>"$dir/iso.log" 2>&1 || iso_rc=$?
cat "$dir/iso.log"
[ "$iso_rc" -ne 124 ] || fail "isolation specs finished within 15 minutes"
[ -f "$dir/iso/out/regression.diffs" ] && cat "$dir/iso/out/regression.diffs"
# PostgreSQL 15 prints "test NAME ... ok", 16 and later TAP ("ok N - NAME")
p=$(grep -cE '(\.\.\. +ok( |$)|^ok [0-9]+ )' "$dir/iso.log")
f=$(grep -cE '(\.\.\. +(FAILED|failed)|^not ok [0-9]+ )' "$dir/iso.log")
passed=$((passed + p))
failed=$((failed + f))
[ "$p" -gt 0 ] || fail "isolation specs did not run"

# ------------------------------------------------------------ own cluster
# A cluster whose WAL writer stays idle long enough for the crash test to
# lose a transaction's records (they are only in WAL buffers).
cdir="$dir/crash"
mkdir -p "$cdir"
cport=$(txb_free_port)
if ! txb_cluster_start "$cdir" "$cport" "wal_writer_delay = 10s" "autovacuum = off" \
	"wal_level = replica" "max_wal_senders = 4" "hot_standby = on"; then
	fail "start a cluster of our own"
	txb_result portable "$passed" "$failed"
	exit 1
fi
C=(-h "$cdir" -p "$cport" -d postgres)
psql -X -q "${C[@]}" -f "$SQL" -v schema=txb >/dev/null 2>&1
psql -X -q "${C[@]}" -c "ALTER DATABASE postgres SET search_path = \"\$user\", public, txb" >/dev/null
cq() { q "${C[@]}" "$@"; }
restart() {
	txb_as_owner "$PG_BINDIR/pg_ctl" -D "$cdir/data" -m "$1" -w stop >/dev/null 2>&1
	txb_as_owner "$PG_BINDIR/pg_ctl" -D "$cdir/data" -l "$cdir/server.log" -w start >/dev/null
}

# A producer enqueues, and the server crashes (immediate stop) before any
# of its WAL is written.
cq -c "SELECT barrier_enqueue()" >/dev/null	# earlier WAL flushed by this commit
coproc PROD { psql -X -q -At "${C[@]}" 2>&1; }
prod=$PROD_PID
echo "BEGIN; SELECT barrier_enqueue();" >&"${PROD[1]}"
IFS= read -r -t 120 lost <&"${PROD[0]}"
lost_xid=$(( ${lost:-0} % 4294967296 ))
restart immediate
kill "$prod" 2>/dev/null
wait "$prod" 2>/dev/null
# Before any new transaction has the lost xid, it is ahead of the server.
lost_full="((pg_snapshot_xmax(pg_current_snapshot())::text::int8 & ~4294967295::int8) | $lost_xid)::text::xid8"
is "after the crash the lost xid is ahead of the server (pg_xact_status: 22023)" \
	"$(cq -c "SELECT pg_xact_status($lost_full)")" "ERROR 22023"
is "... its token reads aborted: status, wait, wait_all, READ ONLY wait" \
	"$(cq -c "SELECT barrier_status('$lost') || ',' || barrier_wait('$lost') || ',' || (SELECT state FROM barrier_wait_all(ARRAY['$lost']::xid8[], '1s'))" \
		-c "SET default_transaction_read_only = on" -c "SELECT barrier_wait('$lost', '1s')" | tr '\n' ,)" \
	"aborted,aborted,aborted,aborted,"
# New transactions reuse the number; the one that gets it enqueues too.
reused=no
for _ in $(seq 1 50); do
	x=$(psql -X -q -At "${C[@]}" <<<"BEGIN; SELECT pg_current_xact_id()::text::int8 % 4294967296; SELECT barrier_enqueue(); COMMIT;" | sed -n 1p)
	if [ "${x:-0}" -ge "$lost_xid" ]; then
		[ "$x" = "$lost_xid" ] && reused=yes
		break
	fi
done
is "the lost transaction's xid was handed out again after the crash" "$reused" yes
is "... by xid alone it reads committed (the alias)" \
	"$(cq -c "SELECT pg_xact_status(((pg_snapshot_xmax(pg_current_snapshot())::text::int8 & ~4294967295::int8) | $lost_xid)::text::xid8)")" "committed"
is "... the token reads aborted: status, wait, wait_all" \
	"$(cq -c "SELECT barrier_status('$lost') || ',' || barrier_wait('$lost', '1s') || ',' || (SELECT state FROM barrier_wait_all(ARRAY['$lost']::xid8[]))")" "aborted,aborted,aborted"
for _ in $(seq 1 300); do cq -c "SELECT barrier_enqueue()" >/dev/null; done
is "... and still after 300 more barrier commits and a restart" \
	"$(restart fast; cq -c "SELECT barrier_status('$lost')")" "aborted"

# A killed producer reads aborted.
coproc PROD { psql -X -q -At "${C[@]}" 2>&1; }
prod=$PROD_PID
echo "BEGIN; SELECT barrier_enqueue(), pg_backend_pid();" >&"${PROD[1]}"
IFS='|' read -r -t 120 ktok kpid <&"${PROD[0]}"
is "killed producer: in progress, then aborted" \
	"$(cq -c "SELECT barrier_status('$ktok')" -c "SELECT pg_terminate_backend($kpid)" \
		-c "SELECT barrier_wait('$ktok', '10s')" | tr '\n' ,)" "in progress,t,aborted,"
kill "$prod" 2>/dev/null
wait "$prod" 2>/dev/null

# A prepared transaction keeps its waiters across a restart.
ptok=$(psql -X -q -At "${C[@]}" <<<"BEGIN; SELECT barrier_enqueue(); PREPARE TRANSACTION 'txb_portable';" | sed -n 1p)
restart fast
is "prepared transaction across a restart: in progress, then committed" \
	"$(cq -c "SELECT barrier_wait('$ptok', '50ms')" -c "COMMIT PREPARED 'txb_portable'" \
		-c "SELECT barrier_wait('$ptok')" | tr '\n' ,)" "in progress,committed,"

# The ring: move the xid counter on by whole buckets (2^22 xids) with
# pg_resetwal -x; barrier_enqueue empties the slot the bucket after next
# will use, and tokens older than the window expire with 55000.
old_c=$(cq -c "SELECT barrier_enqueue()")
old_a=$(psql -X -q -At "${C[@]}" <<<"BEGIN; SELECT barrier_enqueue(); ROLLBACK;" | sed -n 1p)
jump() {	# jump BUCKET: next xid becomes the first of BUCKET
	local x=$(( $1 * 4194304 ))
	txb_as_owner "$PG_BINDIR/pg_ctl" -D "$cdir/data" -m fast -w stop >/dev/null
	txb_as_owner dd if=/dev/zero bs=262144 count=1 status=none \
		of="$cdir/data/pg_xact/$(printf '%04X' $(( x / 1048576 )))"
	txb_as_owner "$PG_BINDIR/pg_resetwal" -x "$x" -D "$cdir/data" >"$cdir/resetwal.log" 2>&1
	txb_as_owner "$PG_BINDIR/pg_ctl" -D "$cdir/data" -l "$cdir/server.log" -w start >/dev/null
}
jump 5
is "bucket 5: tokens of bucket 0 are still answered" \
	"$(cq -c "SELECT barrier_enqueue() IS NOT NULL" -c "SELECT barrier_status('$old_c') || ',' || barrier_status('$old_a')" | tail -1)" "committed,aborted"
is "... barrier_enqueue emptied slot 7 for bucket 7" \
	"$(cq -c "SELECT emptied_for FROM txb.barrier_ring WHERE slot = 7")" "7"
jump 6
is "bucket 6: barrier_enqueue empties bucket 0's slot with TRUNCATE" \
	"$(cq -c "SELECT barrier_enqueue() IS NOT NULL" -c "SELECT count(*) || ',' || (SELECT emptied_for FROM txb.barrier_ring WHERE slot = 0) FROM txb.barrier_marker_0" | tail -1)" "0,8"
is "... bucket 0's tokens expire: 55000, never a guess" \
	"$(cq -c "SELECT barrier_status('$old_c')"),$(cq -c "SELECT barrier_wait('$old_a')")" "ERROR 55000,ERROR 55000"
is "... a new token works" "$(cq -c "SELECT barrier_wait(barrier_enqueue(), '0')")" "in progress"

# ------------------------------------------------------------ standby
sdir="$dir/standby"
mkdir -p "$sdir"
chown postgres: "$sdir"
sport=$(txb_free_port)
if txb_as_owner "$PG_BINDIR/pg_basebackup" -h "$cdir" -p "$cport" -U postgres \
	-D "$sdir/data" -R -X stream >"$sdir/basebackup.log" 2>&1; then
	txb_as_owner sed -i "s/^port = .*/port = $sport/; s|^unix_socket_directories = .*|unix_socket_directories = '$sdir'|" \
		"$sdir/data/postgresql.conf"
	txb_as_owner "$PG_BINDIR/pg_ctl" -D "$sdir/data" -l "$sdir/server.log" -w start >/dev/null
	SB=(-h "$sdir" -p "$sport" -d postgres)
	coproc PROD { psql -X -q -At "${C[@]}" 2>&1; }
	prod=$PROD_PID
	echo "BEGIN; SELECT barrier_enqueue();" >&"${PROD[1]}"
	IFS= read -r -t 120 stok <&"${PROD[0]}"
	psql -X -q -At "${SB[@]}" -c "SELECT barrier_wait('$stok', '60s')" >"$sdir/wait.out" 2>&1 &
	swait=$!
	# the standby waiter is polling (asleep in pg_sleep), not answering
	state=
	txb_wait_for "q ${SB[*]} -c \"SELECT wait_event FROM pg_stat_activity WHERE query LIKE '%barrier_wait(''$stok''%' AND pid <> pg_backend_pid()\"" PgSleep &&
		state=PgSleep
	is "standby: the waiter polls while the producer is open" "$state" PgSleep
	sahead=$(q "${SB[@]}" -c "SELECT (4294967296 + (pg_snapshot_xmax(pg_current_snapshot())::text::int8 + 1000000) % 4294967296)::text")
	is "standby: a token beyond replay is not yet seen: in progress (status, bounded wait)" \
		"$(q "${SB[@]}" -c "SELECT barrier_status('$sahead') || ',' || barrier_wait('$sahead', '100ms')")" \
		"in progress,in progress"
	is "standby: enqueue refused (25006)" "$(q "${SB[@]}" -c "SELECT barrier_enqueue()")" "ERROR 25006"
	echo "COMMIT;" >&"${PROD[1]}"
	echo '\q' >&"${PROD[1]}"
	wait "$swait"
	is "standby: committed once replayed" "$(cat "$sdir/wait.out")" committed
	wait "$prod" 2>/dev/null
	a2=$(psql -X -q -At "${C[@]}" <<<"BEGIN; SELECT barrier_enqueue(); ROLLBACK;" | sed -n 1p)
	is "standby: aborted token" "$(q "${SB[@]}" -c "SELECT barrier_wait('$a2', '10s')")" aborted
	txb_as_owner "$PG_BINDIR/pg_ctl" -D "$sdir/data" -m fast -w stop >/dev/null
else
	cat "$sdir/basebackup.log"
	fail "standby: pg_basebackup"
fi

# ------------------------------------------------------------ pgbouncer
if command -v pgbouncer >/dev/null; then
	bdir="$dir/bouncer"
	mkdir -p "$bdir"
	chown postgres: "$bdir"
	bport=$(txb_free_port)
	cat >"$bdir/pgbouncer.ini" <<EOF
[databases]
postgres = host=$cdir port=$cport dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = trust
auth_file = $bdir/users.txt
pool_mode = transaction
default_pool_size = 4
max_client_conn = 100
logfile = $bdir/pgbouncer.log
pidfile = $bdir/pgbouncer.pid
EOF
	echo '"postgres" ""' >"$bdir/users.txt"
	chown -R postgres: "$bdir"
	txb_as_owner pgbouncer "$bdir/pgbouncer.ini" >/dev/null 2>&1 &
	bpid=$!
	B=(-h 127.0.0.1 -p "$bport" -U postgres -d postgres)
	# libpq 18+ may ask for a newer protocol than PgBouncer speaks
	export PGMAXPROTOCOLVERSION=3.0
	txb_wait_for "psql -X -q -At ${B[*]} -c 'SELECT 1'" 1
	# 8 producers hold their transactions open until 8 waiters block
	for i in $(seq 1 8); do
		psql -X -q -At "${B[@]}" >"$bdir/p$i.out" 2>&1 <<EOF &
BEGIN;
SELECT barrier_enqueue();
SELECT pg_sleep(0.5);
$([ $((i % 2)) -eq 0 ] && echo ROLLBACK || echo COMMIT);
EOF
	done
	# until every producer has printed its token
	txb_wait_for "for i in \$(seq 1 8); do [ -s '$bdir'/p\$i.out ] && echo; done | wc -l" 8
	for i in $(seq 1 8); do
		t=$(head -1 "$bdir/p$i.out")
		psql -X -q -At "${B[@]}" -c "SELECT barrier_wait('$t', '30s')" >"$bdir/w$i.out" 2>&1 &
	done
	for j in $(jobs -p); do [ "$j" = "$bpid" ] || wait "$j"; done
	got=
	for i in $(seq 1 8); do got="$got$(cat "$bdir/w$i.out"),"; done
	is "pgbouncer transaction pooling: 8 producers, 8 waiters over a pool of 4" "$got" \
		"committed,aborted,committed,aborted,committed,aborted,committed,aborted,"
	# runuser does not pass SIGTERM on: stop pgbouncer by its own pid
	[ -s "$bdir/pgbouncer.pid" ] && kill "$(cat "$bdir/pgbouncer.pid")" 2>/dev/null
	wait "$bpid" 2>/dev/null
	unset PGMAXPROTOCOLVERSION
else
	fail "pgbouncer is not installed"
fi
txb_cluster_stop "$cdir"

# ------------------------------------------------------------ clients
# The client layers, unchanged, against the portable edition (their own
# counts, kept apart from the C edition's runs).
export TXB_INSTALL_SQL="$SQL"
for layer in ${TXB_PORTABLE_CLIENT_LAYERS-40-client 50-python 65-ruby}; do
	sub="$dir/results-$layer"
	mkdir -p "$sub"
	TXB_RESULTS="$sub" bash "$TXB_ROOT/tools/layers/$layer.sh" >"$dir/$layer.log" 2>&1
	if read -r p f <"$sub/${layer#*-}" 2>/dev/null; then
		echo "portable: $layer against the portable edition: $p passed, $f failed"
		if [ "$f" -gt 0 ]; then
			# the failing tests' reports (unittest's and the layers' own), then the end
			sed -n '/^=\{20,\}$/,/^Ran [0-9]* tests/p' "$dir/$layer.log" | head -n 300
			grep -E 'FAILED|^not ok' "$dir/$layer.log" | head -n 40
			tail -n 30 "$dir/$layer.log"
		fi
		passed=$((passed + p))
		failed=$((failed + f))
	else
		tail -n 60 "$dir/$layer.log"
		fail "$layer against the portable edition reported no result"
	fi
done

psql -X -q -c "DROP DATABASE IF EXISTS $DB" -c "DROP ROLE IF EXISTS txb_owner" \
	-c "DROP ROLE IF EXISTS txb_app" >/dev/null 2>&1
txb_result portable "$passed" "$failed"
[ "$failed" -eq 0 ]
