#!/usr/bin/env bash
# Tests of the txb command-line tool against a running server.  TAP output.
#
# Environment:
#   TXB_BIN           the txb binary (default: ../txb next to this script)
#   TXB_TEST_DB       database with CREATE EXTENSION tx_barrier (default:
#                     $PGDATABASE); host, port, user from libpq's PG* vars
#   TXB_TEST_NOEXT_DB a database without the extension (tests skipped if
#                     unset)
#
# Producers are psql sessions fed through FIFOs; a waiter is known to be
# blocked when pg_locks shows it waiting for the producer's transaction id.
set -u

here=$(cd "$(dirname "$0")" && pwd)
TXB=${TXB_BIN:-$here/../txb}
DB=${TXB_TEST_DB:-${PGDATABASE:-postgres}}
NOEXT=${TXB_TEST_NOEXT_DB:-}
APP=txb-cli-test-$$
export PGAPPNAME=$APP

work=$(mktemp -d /tmp/txb-cli.XXXXXX)
n=0
failed=0

ok() { # ok CONDITION_STATUS NAME
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		failed=$((failed + 1))
		echo "not ok $n - $2"
	fi
}
diag() { echo "# $*"; }

# t NAME CMD...: runs txb with CMD, capturing $out, $err and $rc.
t() {
	"$TXB" "$@" >"$work/out" 2>"$work/err"
	rc=$?
	out=$(cat "$work/out")
	err=$(cat "$work/err")
}

# expect NAME RC [STDOUT]: checks the last t.
expect() {
	local name=$1 want_rc=$2
	if [ $# -ge 3 ]; then
		[ "$rc" -eq "$want_rc" ] && [ "$out" = "$3" ]
		ok $? "$name (exit $want_rc, prints \"${3//$'\n'/\\n}\")"
	else
		[ "$rc" -eq "$want_rc" ]
		ok $? "$name (exit $want_rc)"
	fi
	if [ "$rc" -ne "$want_rc" ] || { [ $# -ge 3 ] && [ "$out" != "$3" ]; }; then
		diag "  exit $rc, stdout: $out"
		diag "  stderr: $err"
	fi
}

# err_has TEXT NAME: the last stderr contains TEXT.
err_has() {
	case "$err" in *"$1"*) ok 0 "$2" ;; *)
		ok 1 "$2"
		diag "  stderr: $err"
		;;
	esac
}

sql() { psql -X -q -At -d "$DB" -v ON_ERROR_STOP=1 "$@"; }

committed_token() { sql -c 'SELECT barrier_enqueue()'; }
aborted_token() { sql -c 'BEGIN' -c 'SELECT barrier_enqueue()' -c 'ROLLBACK'; }

# Producer sessions: producer_start NAME, then producer_sql NAME SQL and
# producer_query NAME SQL (prints the one-line answer).
declare -A pin pout ppid
producer_start() {
	local name=$1 fi fo
	mkfifo "$work/$name.in" "$work/$name.out"
	PGAPPNAME=txb-cli-producer psql -X -q -At -d "$DB" \
		<"$work/$name.in" >"$work/$name.out" 2>&1 &
	ppid[$name]=$!
	exec {fi}>"$work/$name.in"
	exec {fo}<"$work/$name.out"
	pin[$name]=$fi
	pout[$name]=$fo
}
producer_sql() { echo "$2" >&"${pin[$1]}"; }
producer_query() {
	local line
	echo "$2" >&"${pin[$1]}"
	IFS= read -r -t 30 line <&"${pout[$1]}"
	echo "$line"
}
producer_stop() {
	echo '\q' >&"${pin[$1]}"
	exec {pin[$1]}>&-
	wait "${ppid[$1]}" 2>/dev/null
	exec {pout[$1]}<&-
}
# A token of a transaction left open in producer NAME.
open_token() { producer_query "$1" 'BEGIN; SELECT barrier_enqueue();'; }

# await_blocked TOKEN: until a txb of this test waits on TOKEN's lock.
await_blocked() {
	local xid=$(($1 % 4294967296)) c deadline=$((SECONDS + 30))
	while [ $SECONDS -lt $deadline ]; do
		c=$(sql -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a
			USING (pid) WHERE a.application_name = '$APP'
			AND l.locktype = 'transactionid' AND NOT l.granted
			AND l.transactionid::text = '$xid'")
		[ "$c" -gt 0 ] && return 0
		sleep 0.02
	done
	return 1
}
# await_no_waiter: until no txb of this test waits on any transaction lock.
await_no_waiter() {
	local c deadline=$((SECONDS + 30))
	while [ $SECONDS -lt $deadline ]; do
		c=$(sql -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a
			USING (pid) WHERE a.application_name = '$APP'
			AND l.locktype = 'transactionid' AND NOT l.granted")
		[ "$c" -eq 0 ] && return 0
		sleep 0.02
	done
	return 1
}

# exit_within SECONDS PID: waits for the background PID to exit and returns
# its status; kills it and returns 255 if it is still there after SECONDS.
exit_within() {
	local deadline=$((SECONDS + $1))
	while kill -0 "$2" 2>/dev/null && [ $SECONDS -lt "$deadline" ]; do
		sleep 0.05
	done
	if kill -0 "$2" 2>/dev/null; then
		diag "  process $2 did not exit within $1 s"
		kill -KILL "$2" 2>/dev/null
		wait "$2" 2>/dev/null
		return 255
	fi
	wait "$2"
}

cleanup() {
	for name in "${!ppid[@]}"; do
		kill "${ppid[$name]}" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT

# ---------------------------------------------------------------- usage
t --help
expect "--help" 0
case "$out" in *Usage:*status*wait-all*run*) ok 0 "--help describes the commands" ;;
*) ok 1 "--help describes the commands" ;; esac
t -?
expect "-? is --help" 0
t --version
expect "--version" 0 "txb (tx_barrier) $(sed -n 's/^EXTVERSION *= *//p' "$here/../../Makefile").0"
t
expect "no arguments" 3
err_has "no command given" "no arguments: says so"
t frobnicate 5
expect "unknown command" 3
err_has 'unknown command "frobnicate"' "unknown command: names it"
t --frob status 5
expect "unknown option" 3
t status 12x
expect "malformed token" 3
err_has "malformed token" "malformed token: says so"
t status -- 5
expect "\"--\" outside run" 3
t status
expect "status without token" 3
t status 1 2
expect "status with two tokens" 3
t wait-all
expect "wait-all without tokens" 3
t wait 5 --timeout 5parsecs
expect "bad timeout unit" 3
err_has "invalid timeout" "bad timeout: says so"
t wait 5 -t -1
expect "negative timeout" 3
t wait 5 --timeout
expect "--timeout without value" 3
t status --timeout 1s 5
expect "status takes no timeout" 3
t run 5
expect "run without -- COMMAND" 3
t run 5 --
expect "run with empty COMMAND" 3
t run 5 wait -- true
expect "run with two tokens" 3

# ---------------------------------------------------------------- errors
t -d "host=/nonexistent/txb port=1" status 5
expect "unreachable server" 3
err_has "could not connect" "unreachable server: says so"
if [ -n "$NOEXT" ]; then
	t -d "$NOEXT" status 5
	expect "database without the extension" 3
	err_has "CREATE EXTENSION tx_barrier" "no extension: names the fix"
else
	n=$((n + 1))
	echo "ok $n # SKIP TXB_TEST_NOEXT_DB not set"
fi
t -d "$DB" status 18446744073709551615
expect "token in the future" 3
err_has "SQLSTATE 22023" "future token: server error with SQLSTATE"
t -d "$DB" wait 0
expect "token 0" 3

# ---------------------------------------------------------------- states
C=$(committed_token)
A=$(aborted_token)
[ -n "$C" ] && [ -n "$A" ]
ok $? "setup: committed and aborted tokens"
t -d "$DB" status "$C"
expect "status of a committed transaction" 0 "committed"
t -d "$DB" wait "$C"
expect "wait on a committed transaction" 0 "committed"
t -d "$DB" status "$A"
expect "status of an aborted transaction" 1 "aborted"
t -d "$DB" wait "$A"
expect "wait on an aborted transaction" 1 "aborted"
t -d "$DB" -q status "$C"
expect "-q prints nothing" 0 ""
t status "$C" --quiet -d "$DB"
expect "options after the command" 0 ""
PGDATABASE=$DB t status "$C"
expect "database from PGDATABASE" 0 "committed"
t -d "dbname=$DB application_name=$APP" status "$A"
expect "-d with a connection string" 1 "aborted"
t --dbname="postgresql:///$DB?host=${PGHOST:-/var/run/postgresql}" status "$C"
expect "--dbname= with a URI" 0 "committed"

producer_start p1
R=$(open_token p1)
[ -n "$R" ]
ok $? "setup: open transaction"
t -d "$DB" status "$R"
expect "status of a running transaction" 2 "in progress"
t -d "$DB" wait --timeout 200ms "$R"
expect "wait with a timeout on a running transaction" 2 "in progress"
t -d "$DB" wait -t 0 "$R"
expect "wait -t 0 only checks" 2 "in progress"
t -d "$DB" --timeout=0.1 wait "$R"
expect "--timeout= in seconds" 2 "in progress"

# wait blocks until COMMIT
"$TXB" -d "$DB" wait "$R" >"$work/w1" 2>&1 &
w=$!
await_blocked "$R"
ok $? "wait blocks on the running transaction"
kill -0 "$w" 2>/dev/null
ok $? "... and is still running"
producer_sql p1 'COMMIT;'
wait "$w"
rc=$?
[ $rc -eq 0 ] && [ "$(cat "$work/w1")" = committed ]
ok $? "wait returns committed after COMMIT (exit 0)"

# wait blocks until ROLLBACK
R=$(open_token p1)
"$TXB" -d "$DB" wait "$R" >"$work/w2" 2>&1 &
w=$!
await_blocked "$R"
ok $? "wait blocks again"
producer_sql p1 'ROLLBACK;'
wait "$w"
rc=$?
[ $rc -eq 1 ] && [ "$(cat "$work/w2")" = aborted ]
ok $? "wait returns aborted after ROLLBACK (exit 1)"

# ---------------------------------------------------------------- wait-all
t -d "$DB" wait-all "$C" "$C"
expect "wait-all, all committed" 0 "$C committed
$C committed"
t -d "$DB" wait-all "$C" "$A"
expect "wait-all with one aborted" 1 "$C committed
$A aborted"
R=$(open_token p1)
t -d "$DB" wait-all --timeout 100ms "$C" "$R"
expect "wait-all with a timeout" 2 "$C committed
$R in progress"
t -d "$DB" wait-all -t 100ms "$A" "$R"
expect "wait-all: aborted beats in progress" 1 "$A aborted
$R in progress"
"$TXB" -d "$DB" wait-all "$C" "$R" >"$work/w3" 2>&1 &
w=$!
await_blocked "$R"
ok $? "wait-all blocks on the running transaction"
producer_sql p1 'COMMIT;'
wait "$w"
rc=$?
[ $rc -eq 0 ] && [ "$(cat "$work/w3")" = "$C committed
$R committed" ]
ok $? "wait-all returns when it committed"

# ---------------------------------------------------------------- run
marker=$work/marker
t -d "$DB" run "$C" -- sh -c "echo ran >'$marker'; echo out"
expect "run on committed runs the command" 0 "out"
[ -f "$marker" ]
ok $? "... the command ran"
rm -f "$marker"
t -d "$DB" run "$C" -- sh -c 'exit 7'
expect "run exits with the command's status" 7
t -d "$DB" run "$C" -- /nonexistent/command
expect "run of a missing command" 127
t -d "$DB" run "$A" -- sh -c "echo ran >'$marker'"
expect "run on aborted" 1 ""
[ ! -e "$marker" ]
ok $? "... does not run the command"
err_has "aborted" "... and says aborted on stderr"
R=$(open_token p1)
t -d "$DB" run --timeout 100ms "$R" -- sh -c "echo ran >'$marker'"
expect "run with a timeout on a running transaction" 2 ""
[ ! -e "$marker" ]
ok $? "... does not run the command"
"$TXB" -d "$DB" run "$R" -- sh -c "echo ran >'$marker'" >/dev/null 2>&1 &
w=$!
await_blocked "$R"
ok $? "run blocks on the running transaction"
[ ! -e "$marker" ]
ok $? "... without running the command yet"
producer_sql p1 'COMMIT;'
wait "$w"
rc=$?
[ $rc -eq 0 ] && [ -f "$marker" ]
ok $? "run runs the command after COMMIT"
rm -f "$marker"
R=$(open_token p1)
"$TXB" -d "$DB" run "$R" -- sh -c "echo ran >'$marker'" >/dev/null 2>&1 &
w=$!
await_blocked "$R"
ok $? "run blocks again"
producer_sql p1 'ROLLBACK;'
wait "$w"
rc=$?
[ $rc -eq 1 ] && [ ! -e "$marker" ]
ok $? "run does not run the command after ROLLBACK (exit 1)"

# ---------------------------------------------------------------- signals
R=$(open_token p1)
"$TXB" -d "$DB" wait "$R" >"$work/w4" 2>&1 &
w=$!
await_blocked "$R"
ok $? "wait blocks before SIGTERM"
kill -TERM "$w"
exit_within 60 "$w"
rc=$?
[ $rc -eq 143 ]
ok $? "SIGTERM ends the wait with exit 143 (got $rc)"
await_no_waiter
ok $? "... and the server no longer waits for it"
kill -0 "${ppid[p1]}" 2>/dev/null
ok $? "... while the producer's transaction is still open"
producer_sql p1 'ROLLBACK;'
producer_stop p1

echo "1..$n"
[ "$failed" -eq 0 ]
