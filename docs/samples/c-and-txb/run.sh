#!/usr/bin/env bash
# The C library and txb guide (docs/guides/c-and-txb.md): producer.c and
# worker.c built with pkg-config against the installed libtxbarrier; the
# worker (and send-invoice.sh, with txb run) blocked on the producer's
# transaction until its end, committed -> the row, aborted -> nothing run;
# txb wait-all's lines and exit status; a timeout's exit 2.
. "$TXB_ROOT/docs/samples/lib.sh"

here=$TXB_ROOT/docs/samples/c-and-txb
bin=$SAMPLE_DIR/bin
export PGDATABASE=billing
sample_db billing noext
psql -X -q -v ON_ERROR_STOP=1 -f "$here/schema.sql"

echo "== build.sh (the library is installed already: only the cc lines)"
mkdir -p "$bin"
(cd "$here" && grep '^cc ' build.sh | sed "s#-o \([a-z]*\) #-o $bin/\1 #" | bash -e) ||
	sample_fail "cc failed"

# round WORKER ANSWER EXPECTED_EXIT OUTPUT_REGEX
round() {
	local worker=$1 answer=$2 want=$3 re=$4 line rc=0 out=$SAMPLE_DIR/out
	coproc PRODUCER { "$bin/producer" 250; }
	local_ppid=$PRODUCER_PID
	IFS= read -r -t 60 line <&"${PRODUCER[0]}" || sample_fail "no line from producer"
	[[ $line =~ ^invoice\ ([0-9]+)\ token\ ([0-9]+)$ ]] || sample_fail "bad line: $line"
	local id=${BASH_REMATCH[1]} token=${BASH_REMATCH[2]}
	$worker "$token" "$id" >"$out" 2>&1 &
	local wpid=$!
	sample_wait_blocked billing "$token"
	echo "$answer" >&"${PRODUCER[1]}"
	wait "$local_ppid" || sample_fail "producer failed"
	wait "$wpid" || rc=$?
	[ $rc = "$want" ] && grep -Eqx "$re" "$out" ||
		sample_fail "$worker after $answer: exit $rc, $(cat "$out")"
	echo "$worker: blocked on $token until $answer; exit $rc: $(cat "$out")"
	TOKENS+=("$token")
}
TOKENS=()
round "$bin/worker" COMMIT 0 'committed: invoice [0-9]+ of 250'
round "$bin/worker" ROLLBACK 1 'aborted: nothing to do'
round "sh $here/send-invoice.sh" COMMIT 0 'sending invoice [0-9]+ of 250'
round "sh $here/send-invoice.sh" ROLLBACK 1 'aborted: transaction aborted; not running psql'

echo "== txb wait-all"
rc=0
txb wait-all "${TOKENS[@]}" >"$SAMPLE_DIR/all" || rc=$?
cat "$SAMPLE_DIR/all"
[ $rc = 1 ] && [ "$(cut -d' ' -f2 "$SAMPLE_DIR/all" | tr '\n' ' ')" = "committed aborted committed aborted " ] ||
	sample_fail "wait-all: exit $rc"

echo "== txb --timeout 250ms wait, on a transaction still open"
coproc PRODUCER { "$bin/producer" 1; }
local_ppid=$PRODUCER_PID
IFS= read -r -t 60 line <&"${PRODUCER[0]}"
token=${line##* token }
rc=0
txb --timeout 250ms wait "$token" >"$SAMPLE_DIR/open" || rc=$?
echo ROLLBACK >&"${PRODUCER[1]}"
wait "$local_ppid"
[ $rc = 2 ] && [ "$(cat "$SAMPLE_DIR/open")" = "in progress" ] || sample_fail "timeout: exit $rc"
echo "exit 2: $(cat "$SAMPLE_DIR/open")"
echo "c-and-txb: ok"
