#!/usr/bin/env bash
# The SQL protocol from any language (docs/guides/sql-any-language.md): a
# producer in each of Python (psycopg 3), Ruby (ruby-pg) and psql, each
# paired with a worker in another of them (Ruby, shell, Python).  For every
# pair: the worker is blocked on the producer's transaction before the end;
# after COMMIT it prints the committed row, after ROLLBACK "aborted".
. "$TXB_ROOT/docs/samples/lib.sh"

here=$TXB_ROOT/docs/samples/sql-any-language
export PGDATABASE=notes
sample_db notes noext
psql -X -q -v ON_ERROR_STOP=1 -f "$here/schema.sql"
cd "$here"

# round PRODUCER_CMD WORKER_CMD ANSWER EXPECTED
round() {
	local producer=$1 worker=$2 answer=$3 expect=$4 line token note out=$SAMPLE_DIR/worker.out
	coproc PRODUCER { eval "$producer"; }
	local_ppid=$PRODUCER_PID
	IFS= read -r -t 60 line <&"${PRODUCER[0]}" || sample_fail "no line from: $producer"
	[[ $line =~ ^token\ ([0-9]+)\ note\ ([0-9]+)$ ]] || sample_fail "bad line: $line"
	token=${BASH_REMATCH[1]} note=${BASH_REMATCH[2]}
	$worker "$token" "$note" >"$out" 2>&1 &
	local wpid=$!
	sample_wait_blocked notes "$token"
	echo "$answer" >&"${PRODUCER[1]}"
	wait "$local_ppid" || sample_fail "producer failed: $producer"
	wait "$wpid" || sample_fail "worker failed: $worker" "$out"
	[ "$(cat "$out")" = "$expect" ] || sample_fail "worker said '$(cat "$out")', not '$expect'"
	echo "$producer -> $worker: blocked on $token until $answer, then: $(cat "$out")"
}

for answer in COMMIT ROLLBACK; do
	[ $answer = COMMIT ] && want() { echo "committed: $1"; } || want() { echo aborted; }
	round "$PY producer.py 'from Python'" "ruby worker.rb" $answer "$(want 'from Python')"
	round "ruby producer.rb 'from Ruby'" "sh worker.sh" $answer "$(want 'from Ruby')"
	round "psql -X -q -v body='from psql' -f producer.psql" "$PY worker.py" $answer "$(want 'from psql')"
done
[ "$(sample_psql notes "SELECT string_agg(body, ', ' ORDER BY id) FROM notes")" = \
	"from Python, from Ruby, from psql" ]
echo "sql-any-language: ok"
