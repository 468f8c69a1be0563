# A blocked barrier_wait() obeys the usual interrupts, and its own timeout.
#
# A waiter sleeping on a token's xid lock, with or without a timeout, is
# ended by statement_timeout and pg_cancel_backend (SQLSTATE 57014) and by
# pg_terminate_backend (connection closed), promptly; the producer is
# unaffected each time.  barrier_wait(token, timeout) returns 'in progress'
# once its timeout has passed.  lock_timeout does not shorten a wait that
# has its own timeout: the function's argument governs.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TxbTest;

my $node = txb_node('interrupts');
$node->safe_psql(
	'postgres', q{
	CREATE TABLE work (id int PRIMARY KEY);
	-- barrier_wait's result and its duration as the server measures it.
	CREATE FUNCTION timed_wait(tok xid8, tmo interval,
							   OUT state barrier_state, OUT secs float8)
	LANGUAGE plpgsql AS $$
	DECLARE t0 timestamptz := clock_timestamp();
	BEGIN
		state := barrier_wait(tok, tmo);
		secs := extract(epoch FROM clock_timestamp() - t0);
	END $$;
});

# The producer: an open transaction with a barrier and a row.
my ($p, $ppid) = txb_session($node);
$p->query_safe('BEGIN');
my $token = $p->query_safe('SELECT barrier_enqueue()');
$p->query_safe('INSERT INTO work VALUES (1)');
note "producer token $token";

sub producer_unaffected
{
	my ($what) = @_;
	is($p->query_safe('SELECT count(*) FROM work'),
		'1', "$what: the producer's transaction goes on");
	is($node->safe_psql('postgres', "SELECT barrier_status('$token')"),
		'in progress', "$what: the token still reads in progress");
	return;
}

# Runs $sql in a new connection (VERBOSITY verbose, so errors show their
# SQLSTATE); returns (stdout, stderr, seconds).
sub run_timed
{
	my ($sql) = @_;
	my ($out, $err);
	my $secs = txb_elapsed(
		sub {
			$node->psql(
				'postgres', $sql,
				stdout => \$out,
				stderr => \$err,
				extra_params => [ '-v', 'VERBOSITY=verbose' ]);
		});
	return ($out, $err, $secs);
}

#
# statement_timeout, without and with a (longer) timeout of the function's.
#
for my $call ("barrier_wait('$token')", "barrier_wait('$token', '10 min')")
{
	my ($out, $err, $secs) =
	  run_timed("SET statement_timeout = '200ms'; SELECT $call");
	like(
		$err,
		qr/ERROR:\s+57014: canceling statement due to statement timeout/,
		"statement_timeout ends $call with 57014");
	is($out, '', "statement_timeout: $call returned nothing");
	cmp_ok($secs, '>=', 0.2, "statement_timeout: $call waited 200ms");
	# A bound no loaded machine reaches, far below the wait's own 10 min:
	# the interrupt, not the wait's end, stopped it.
	cmp_ok($secs, '<', 120, "statement_timeout: $call ended long before any wait's end");
	producer_unaffected("statement_timeout, $call");
}

#
# pg_cancel_backend and pg_terminate_backend of a blocked waiter.
#
for my $call ("barrier_wait('$token')", "barrier_wait('$token', '10 min')")
{
	my ($w, $wpid) = txb_session($node);
	txb_start_statement($w, "SELECT $call");
	ok(txb_wait_blocked($node, $wpid, $token),
		"cancel: $call is blocked on the token's xid lock");
	my ($out, $err);
	my $secs = txb_elapsed(
		sub {
			$node->safe_psql('postgres', "SELECT pg_cancel_backend($wpid)");
			($out, $err) = txb_collect($w);
		});
	like(
		$err,
		qr/ERROR:\s+57014: canceling statement due to user request/,
		"pg_cancel_backend ends $call with 57014");
	is($out, '', "cancel: $call returned nothing");
	cmp_ok($secs, '<', 120, "cancel: $call ended long before any wait's end");
	is($w->query_safe('SELECT 1'), '1', "cancel: the waiter's session goes on");
	producer_unaffected("cancel, $call");

	txb_start_statement($w, "SELECT $call");
	ok(txb_wait_blocked($node, $wpid, $token),
		"terminate: $call is blocked on the token's xid lock");
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($wpid)");
	ok(txb_pid_gone($node, $wpid), "terminate: the waiter's backend is gone");
	like(
		txb_collect_exit($w),
		qr/FATAL:\s+57P01: terminating connection due to administrator command/,
		"pg_terminate_backend ends the connection of ${call}");
	producer_unaffected("terminate, $call");
}

#
# The function's own timeout.
#
{
	my ($out, $err, $secs) =
	  run_timed("SELECT state, secs FROM timed_wait('$token', '300ms')");
	my ($state, $server_secs) = split /\|/, $out // '';
	is($state, 'in progress', "timeout 300ms: returns 'in progress'");
	is($err, '', 'timeout 300ms: no error');
	cmp_ok($server_secs, '>=', 0.3, 'timeout 300ms: waited at least 300ms');
	cmp_ok($secs, '<', 120, 'timeout 300ms: returned, not hung');
	producer_unaffected('timeout 300ms');
}

# Inside a transaction block: the timed-out wait leaves it usable, and no
# stray cancel hits the next statement.
{
	my ($w) = txb_session($node);
	$w->query_safe('BEGIN');
	is($w->query_safe("SELECT barrier_wait('$token', '100ms')"),
		'in progress', "timeout in a transaction block: returns 'in progress'");
	is($w->query_safe('SELECT count(*) FROM work'),
		'0', 'timeout in a transaction block: the transaction goes on');
	$w->query_safe('COMMIT');
	$w->quit;
}

# A statement_timeout longer than the function's timeout does not fire.
{
	my ($out, $err) = run_timed("SET statement_timeout = '5s'; "
		  . "SELECT barrier_wait('$token', '300ms')");
	is($out, 'in progress',
		"statement_timeout 5s, timeout 300ms: returns 'in progress'");
	is($err, '', 'statement_timeout 5s, timeout 300ms: no error');
}

# lock_timeout (50ms) does not cut short barrier_wait(token, '500ms'): the
# function's own timeout governs the wait it bounds.
{
	my ($out, $err, $secs) = run_timed("SET lock_timeout = '50ms'; "
		  . "SELECT state, secs FROM timed_wait('$token', '500ms')");
	my ($state, $server_secs) = split /\|/, $out // '';
	is($state, 'in progress',
		"lock_timeout 50ms, timeout 500ms: returns 'in progress'");
	is($err, '', 'lock_timeout 50ms, timeout 500ms: no lock timeout error');
	cmp_ok($server_secs, '>=', 0.5,
		'lock_timeout 50ms, timeout 500ms: waited the full 500ms');
	cmp_ok($secs, '<', 120, 'lock_timeout 50ms, timeout 500ms: returned, not hung');
	producer_unaffected('lock_timeout');
}

# By the same rule a NULL timeout ("no limit") is not cut short by
# lock_timeout either.  Today the unbounded wait sleeps in the lock manager
# with the session's lock_timeout armed and fails with 55P03 after 50ms,
# while the bounded wait above ignores lock_timeout: a longer explicit
# timeout waits longer than no timeout at all.
{
	my ($w, $wpid) = txb_session($node);
	$w->query_safe("SET lock_timeout = '50ms'");
	txb_start_statement($w, "SELECT barrier_wait('$token')");

	# Either the wait is still blocked (as with no lock_timeout), or it has
	# already failed: wait for whichever comes first, without sleeping.
	ok( $node->poll_query_until(
			'postgres', qq{
			SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $wpid
			  AND ((state = 'active' AND wait_event = 'transactionid'
					AND now() - query_start > interval '200ms')
				OR (state = 'idle' AND query LIKE 'SELECT barrier_wait%')))}),
		'lock_timeout 50ms, no timeout: the wait blocked 200ms or ended');
	my $still_waiting = $node->safe_psql('postgres',
		"SELECT state = 'active' FROM pg_stat_activity WHERE pid = $wpid");
	is($still_waiting, 't',
		'lock_timeout 50ms does not cut short barrier_wait(token) without a timeout'
	);
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($wpid)")
	  if $still_waiting eq 't';
	my (undef, $werr) = txb_collect($w);
	note "lock_timeout, no timeout: $werr";
	$w->quit;
	producer_unaffected('lock_timeout, no timeout');
}

#
# Finally the producer commits: a waiter blocked meanwhile sees it.
#
{
	my ($w, $wpid) = txb_session($node);
	txb_start_statement($w,
		"SELECT barrier_wait('$token'); SELECT count(*) FROM work");
	ok(txb_wait_blocked($node, $wpid, $token),
		'commit: the waiter is blocked on the token\'s xid lock');
	$p->query_safe('COMMIT');
	my ($out, $err) = txb_collect($w);
	is($out, "committed\n1", 'commit: the waiter returns committed and sees the row');
	is($err, '', 'commit: no error in the waiter');
	$w->quit;
	$p->quit;
}

$node->stop;
done_testing();
