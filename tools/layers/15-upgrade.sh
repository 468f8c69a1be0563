#!/usr/bin/env bash
# ALTER EXTENSION tx_barrier UPDATE from every released version to the
# current one (EXTVERSION in the Makefile), through the chain of update
# scripts (e.g. 1.0 -> 1.1 -> 1.2): the current C module serves a
# database still on the old SQL, objects that depend on the extension
# survive the update, the updated extension's catalog entries equal a fresh
# install's, and the regress suite passes on the updated database.
# majors: all
. "$TXB_ROOT/tools/results.sh"
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
cd "$TXB_SRC" || exit 1

current=$(sed -n 's/^EXTVERSION *= *//p' Makefile)
# Released versions: those with an immutable full install script.
released=$(ls extension/tx_barrier--*.sql | sed -n 's|^extension/tx_barrier--\([0-9.]*\)\.sql$|\1|p' |
	grep -vxF "$current")
log="$TXB_WORK/upgrade.log"
: >"$log"
passed=0
failed=0
check() {
	local what=$1
	shift
	if "$@" >>"$log" 2>&1; then
		passed=$((passed + 1))
		echo "ok - $what"
	else
		failed=$((failed + 1))
		echo "not ok - $what (see $log)"
	fi
}
# q DB SQL [PSQL_OPTION...]
q() {
	local db=$1 sql=$2
	shift 2
	"$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" -c "$sql" "$@"
}

# Every catalog fact of the extension's members that an update could change.
catalog_sql="
SELECT e.extname || ' ' || e.extversion || ' ' || e.extrelocatable || ' ' ||
       e.extnamespace::regnamespace
  FROM pg_extension e WHERE e.extname = 'tx_barrier'
UNION ALL
SELECT pg_describe_object(d.classid, d.objid, 0) || ' | ' ||
       coalesce(obj_description(d.objid, d.classid::regclass::text::name), '')
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'tx_barrier')
UNION ALL
SELECT format('%s | %s | %s | %s | %s | %s | %s%s%s%s %s %s %s',
       p.oid::regprocedure, pg_get_function_arguments(p.oid),
       pg_get_function_result(p.oid), p.proargtypes, p.prosrc, p.probin,
       p.provolatile, p.proisstrict, p.proparallel, p.prosecdef, p.procost,
       p.prorows, p.proacl)
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
 WHERE d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'tx_barrier')
UNION ALL
SELECT t.typname || ' enum ' || string_agg(l.enumlabel, ',' ORDER BY l.enumsortorder)
  FROM pg_type t JOIN pg_enum l ON l.enumtypid = t.oid
 WHERE t.typname = 'barrier_state' GROUP BY t.typname
ORDER BY 1"

fresh=txb_upgrade_fresh
q postgres "DROP DATABASE IF EXISTS $fresh" >/dev/null 2>&1
q postgres "CREATE DATABASE $fresh" >/dev/null
q $fresh "CREATE EXTENSION tx_barrier" >/dev/null
check "CREATE EXTENSION installs the current version $current" \
	test "$(q $fresh "SELECT extversion FROM pg_extension WHERE extname = 'tx_barrier'")" = "$current"
check "the catalog entries of a fresh install" \
	q $fresh "$catalog_sql" -o "$TXB_WORK/catalog.fresh"
# The extension row, 8 members, 7 function rows, the enum's labels; from 17
# on the enum's array type is a member of the extension too (not counted).
check "a fresh install has 17 catalog lines (extension, members, functions, enum)" \
	test "$(grep -vc '^type [^|]*\[\] |' "$TXB_WORK/catalog.fresh")" -eq 17

for old in $released; do
	db=txb_upgrade_from_${old//./_}
	q postgres "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
	q postgres "CREATE DATABASE $db" >/dev/null
	check "$old: CREATE EXTENSION tx_barrier VERSION '$old'" \
		q $db "CREATE EXTENSION tx_barrier VERSION '$old'"

	# The current C module answers the old version's SQL.
	check "$old: barrier_enqueue, barrier_status and barrier_wait on the old SQL" \
		test "$(q $db "CREATE TABLE tokens AS SELECT barrier_enqueue() AS token" &&
			q $db "SELECT barrier_status(token) || ' ' || barrier_wait(token, '1s') FROM tokens")" \
		= "committed committed"
	# One session: without shared_preload_libraries the counters are its own.
	check "$old: barrier_wait_all and barrier_stats on the old SQL" \
		test "$(q $db "SELECT string_agg(state::text, ',') FROM tokens,
				barrier_wait_all(ARRAY[token], '1s');
			SELECT waits FROM barrier_stats()" | tr '\n' ' ')" = "committed 1 "
	# The shared server preloads nothing: barrier_waiters() says so.
	check "$old: barrier_waiters on the old SQL" \
		grep -q 'requires tx_barrier in shared_preload_libraries' \
		<(q $db "SELECT count(*) FROM barrier_waiters()" 2>&1)

	# Objects that depend on the extension's members.
	check "$old: a view over barrier_stats() and a barrier_state column" \
		q $db "CREATE VIEW barrier_counters AS SELECT scope, enqueued, waits FROM barrier_stats();
			CREATE TABLE outcomes (id int, state barrier_state);
			INSERT INTO outcomes VALUES (1, 'committed'), (2, 'aborted'), (3, 'in progress')"

	check "$old: ALTER EXTENSION tx_barrier UPDATE" \
		q $db "ALTER EXTENSION tx_barrier UPDATE"
	check "$old: the update reaches $current" \
		test "$(q $db "SELECT extversion FROM pg_extension WHERE extname = 'tx_barrier'")" = "$current"
	check "$old: the catalog entries after the update" \
		q $db "$catalog_sql" -o "$TXB_WORK/catalog.$old"
	check "$old: updated catalog entries equal a fresh install's" \
		diff -u "$TXB_WORK/catalog.fresh" "$TXB_WORK/catalog.$old"
	check "$old: the view and the column survive the update" \
		test "$(q $db "SELECT (SELECT count(*) FROM barrier_counters) || ' ' ||
			(SELECT string_agg(state::text, ',' ORDER BY state) FROM outcomes) || ' ' ||
			(SELECT barrier_status(token) FROM tokens)")" \
		= "1 in progress,committed,aborted committed"

	# The regress suite, on the updated database instead of a fresh one
	# (barrier_surface drops the extension: nothing may depend on it).
	q $db "DROP VIEW barrier_counters; DROP TABLE outcomes, tokens" >/dev/null
	regress_log="$TXB_WORK/upgrade-regress-$old.log"
	runuser -u postgres -- env PATH="$PATH" make -s installcheck ISOLATION= TAP_TESTS= \
		PG_CONFIG="${PG_CONFIG:-$PG_BINDIR/pg_config}" \
		REGRESS_OPTS="--inputdir=. --use-existing --dbname=$db" >"$regress_log" 2>&1
	cat "$regress_log"
	[ -f regression.diffs ] && cat regression.diffs
	read -r p f < <(txb_count_pg_regress "$regress_log")
	passed=$((passed + p))
	failed=$((failed + f))
	q postgres "DROP DATABASE $db" >/dev/null
done
q postgres "DROP DATABASE $fresh" >/dev/null

[ "$failed" -eq 0 ] || cat "$log"
txb_result upgrade "$passed" "$failed"
[ "$failed" -eq 0 ]
