#!/usr/bin/env bash
# Randomized soak with crashes: producers take tokens at random points (top
# level, in savepoints released or rolled back, nested), publish each token
# to a file before their transaction ends, then commit or roll back at
# random; waiters wait on recently published tokens and record their
# answers; every few seconds the server is crashed (pg_ctl -m immediate)
# and restarted, so transactions in flight are lost and their unlogged xids
# are handed out again (a third kind of client burns xids with
# synchronous_commit off, so that the crash loses some).  At the end every
# published token's state must agree with the rows actually present (a
# token's row is inserted in the (sub)transaction that took it, so it
# exists exactly when the token committed), every recorded answer
# likewise; no token may have been published twice (an xid reused after a
# crash must not alias a token), and no client statement may fail with an
# ERROR (a crash costs connections, nothing else).
#
#   tools/soak.sh [--minutes N | --seconds N]   (default: 1 minute)
#
# Runs its own server of the PostgreSQL that PG_CONFIG names (default: the
# host's 15), which must have the extension installed.  Prints its figures
# and ends with "soak: N passed, N failed" over its checks; exits non-zero
# on failure.
set -uo pipefail

TXB_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$TXB_ROOT/tools/cluster.sh"

seconds=60
case "${1:-}" in
--minutes) seconds=$(awk -v m="${2:?}" 'BEGIN { printf "%d", m * 60 }') ;;
--seconds) seconds=${2:?} ;;
"") ;;
*)
	echo "usage: tools/soak.sh [--minutes N | --seconds N]" >&2
	exit 2
	;;
esac

txb_scratch work soak || exit 1
tokens=$work/tokens
burned=$work/burned
txb_as_owner touch "$tokens" "$burned"
pids=()
stop_clients() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	pids=()
}
trap 'stop_clients; txb_run_on_exit' EXIT

txb_cluster_start_free "$work" port "shared_preload_libraries = 'tx_barrier'" \
	"restart_after_crash = off" "log_min_messages = warning" || exit 1
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=postgres
psql=("$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1)
"${psql[@]}" <<SQL || exit 1
CREATE EXTENSION tx_barrier;
CREATE TABLE soak_rows (token xid8 PRIMARY KEY);
CREATE TABLE soak_answers (token xid8, state barrier_state);
-- A random one of the last few tokens published (the file's last bytes;
-- its first and last lines there may be partial).
CREATE FUNCTION soak_recent_token() RETURNS xid8 LANGUAGE sql AS \$\$
	SELECT l::xid8
	  FROM unnest((string_to_array(
			pg_read_file('$tokens',
						 greatest((pg_stat_file('$tokens')).size - 200, 0), 200),
			E'\n'))[2:]) WITH ORDINALITY AS t(l, n)
	 WHERE l ~ '^[0-9]+\$'
	 ORDER BY random() LIMIT 1
\$\$;
SQL

# Producer: variant v places the token; c decides the end.  The token is
# published (appended to the file) before COMMIT or ROLLBACK.
cat >"$work/producer.sql" <<SQL
\set v random(1, 5)
\set c random(0, 1)
\set before random(0, 3)
\set after random(0, 5)
BEGIN;
SELECT pg_sleep(:before / 1000.0);
\if :v = 1
SELECT barrier_enqueue() AS tok \gset
INSERT INTO soak_rows VALUES (:tok::text::xid8);
\elif :v = 2
SAVEPOINT a;
SELECT barrier_enqueue() AS tok \gset
INSERT INTO soak_rows VALUES (:tok::text::xid8);
RELEASE a;
\elif :v = 3
SAVEPOINT a;
SELECT barrier_enqueue() AS tok \gset
INSERT INTO soak_rows VALUES (:tok::text::xid8);
ROLLBACK TO a;
\elif :v = 4
SAVEPOINT o;
SAVEPOINT i;
SELECT barrier_enqueue() AS tok \gset
INSERT INTO soak_rows VALUES (:tok::text::xid8);
RELEASE i;
ROLLBACK TO o;
\else
SAVEPOINT o;
SAVEPOINT i;
SELECT barrier_enqueue() AS tok \gset
INSERT INTO soak_rows VALUES (:tok::text::xid8);
RELEASE i;
RELEASE o;
\endif
\shell echo :tok >> $tokens
SELECT pg_sleep(:after / 1000.0);
\if :c
COMMIT;
\else
ROLLBACK;
\endif
SQL

# Burner: xids that live only in unflushed WAL at the crash, so recovery
# hands them out again, to producers among others.
cat >"$work/burner.sql" <<SQL
SET synchronous_commit = off;
BEGIN;
SELECT pg_current_xact_id() AS x \gset
\shell echo :x >> $burned
SELECT pg_sleep(random() / 200);
COMMIT;
SQL

cat >"$work/waiter.sql" <<SQL
\set ms random(1, 20)
INSERT INTO soak_answers
	SELECT t, barrier_wait(t, make_interval(secs => :ms / 1000.0))
	  FROM soak_recent_token() t WHERE t IS NOT NULL;
SQL

crashes=0
reused=0
recover_failed=0
end=$((SECONDS + seconds))
# The soak lasts its time and, however slow the machine, until it has seen
# at least two crashes and 100 published tokens (what the checks below
# require), with a guard against a hang at ten times its time.
guard=$((SECONDS + 10 * seconds + 300))
soak_more() {
	[ $SECONDS -lt $guard ] || return 1
	[ $SECONDS -lt $end ] && return 0
	[ "$crashes" -lt 2 ] && return 0
	local n
	n=$(grep -c '^[0-9]' "$tokens" 2>/dev/null)
	[ "${n:-0}" -lt 100 ]
}
while soak_more; do
	pids=()
	PGAPPNAME=soak_producer txb_as_owner "$PG_BINDIR/pgbench" -n -c 4 -j 2 \
		-T 3600 -f "$work/producer.sql" >>"$work/pgbench.log" 2>&1 &
	pids+=($!)
	txb_as_owner "$PG_BINDIR/pgbench" -n -c 2 -j 1 -T 3600 \
		-f "$work/waiter.sql" >>"$work/pgbench.log" 2>&1 &
	pids+=($!)
	txb_as_owner "$PG_BINDIR/pgbench" -n -c 1 -T 3600 \
		-f "$work/burner.sql" >>"$work/pgbench.log" 2>&1 &
	pids+=($!)
	sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 2 + 3 * r / 32768 }')"
	txb_as_owner "$PG_BINDIR/pg_ctl" -D "$work/data" -m immediate -w stop \
		>/dev/null 2>&1
	wait "${pids[@]}" 2>/dev/null
	pids=()
	crashes=$((crashes + 1))
	if ! txb_cluster_run "$work"; then
		recover_failed=1
		break
	fi
	# Did the server hand out again an xid used before the crash?
	last=$(sort -n "$tokens" "$burned" | tail -n 1)
	first=$("${psql[@]}" -Atc 'SELECT pg_current_xact_id()')
	if [ -n "$last" ] && [ -n "$first" ] && [ "$first" -le "$last" ]; then
		reused=$((reused + 1))
	fi
done

# The crashes cost clients their connections (FATAL, "server closed the
# connection"), never an ERROR: a waiter's spurious 57014 shows here.
grep -m 5 'ERROR:' "$work/pgbench.log" >&2
client_errors=$(grep -c 'ERROR:' "$work/pgbench.log")
grep -m 5 -E 'TRAP|AddressSanitizer|runtime error|PANIC' "$work/server.log" >&2
sanitizer=$(grep -cE 'TRAP|AddressSanitizer|runtime error' "$work/server.log")

"${psql[@]}" <<SQL >/dev/null || exit 1
CREATE TABLE soak_published (token xid8);
INSERT INTO soak_published
	SELECT l::xid8 FROM unnest(string_to_array(pg_read_file('$tokens'), E'\n')) l
	 WHERE l ~ '^[0-9]+\$';
SQL
read -r published duplicates wrong_final answered wrong_answers < <("${psql[@]}" -AtF' ' -c "
	SELECT (SELECT count(*) FROM soak_published),
		   (SELECT count(*) - count(DISTINCT token) FROM soak_published),
		   (SELECT count(*) FROM soak_published p
			 WHERE barrier_status(p.token) NOT IN ('committed', 'aborted')
				OR (barrier_status(p.token) = 'committed') <>
				   EXISTS (SELECT 1 FROM soak_rows r WHERE r.token = p.token)),
		   (SELECT count(*) FROM soak_answers),
		   (SELECT count(*) FROM soak_answers a
			 WHERE a.state IS NULL
				OR (a.state = 'committed' AND NOT EXISTS
					(SELECT 1 FROM soak_rows r WHERE r.token = a.token))
				OR (a.state = 'aborted' AND EXISTS
					(SELECT 1 FROM soak_rows r WHERE r.token = a.token)))")

echo "soak: ${seconds}s, $crashes crashes survived ($reused reused lost xids)," \
	"$published tokens checked, $duplicates published twice, $wrong_final wrong states;" \
	"$answered waits answered, $wrong_answers wrong answers, $client_errors client errors"

passed=0
failed=0
check() {
	if [ "$1" -eq 0 ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "soak: FAILED: $2" >&2
	fi
}
check "$recover_failed" "the server recovered from every crash"
check "$([ "$crashes" -ge 2 ] && echo 0 || echo 1)" "at least two crashes"
check "$([ "$published" -ge 100 ] && echo 0 || echo 1)" "at least 100 tokens published"
check "$duplicates" "no token published twice"
check "$wrong_final" "every token's state agrees with its row"
check "$wrong_answers" "every recorded wait answer agrees with the rows"
check "$client_errors" "no statement of a producer or waiter failed with an ERROR"
check "$sanitizer" "no assertion failure or sanitizer report in the server log"
echo "soak: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
