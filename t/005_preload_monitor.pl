# With tx_barrier in shared_preload_libraries: counters are cluster-wide,
# and barrier_waiters() lists exactly the sessions blocked on a token, with
# the full token, and forgets them when they stop waiting for any reason
# (answer, timeout, cancel, termination).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Utils;
use Test::More;
use TxbTest;

my $node = txb_node('preload', conf => "shared_preload_libraries = 'tx_barrier'\n");

is($node->safe_psql('postgres', 'SELECT scope FROM barrier_stats()'),
	'cluster', 'preloaded: counters are cluster-wide');
is($node->safe_psql('postgres', 'SELECT count(*) FROM barrier_waiters()'),
	'0', 'nobody waits at first');

# Counters add up across sessions.
my $before = $node->safe_psql('postgres',
	'SELECT enqueued, enqueued_committed, enqueued_aborted, waits FROM barrier_stats()');
$node->safe_psql('postgres', 'SELECT barrier_enqueue()');
$node->safe_psql('postgres', 'BEGIN; SELECT barrier_enqueue(); ROLLBACK;');
$node->safe_psql('postgres', q{SELECT barrier_wait('2')});
my $after = $node->safe_psql('postgres',
	'SELECT enqueued, enqueued_committed, enqueued_aborted, waits FROM barrier_stats()');
my @b = split /\|/, $before;
my @a = split /\|/, $after;
is_deeply([ map { $a[$_] - $b[$_] } 0 .. 3 ], [ 2, 1, 1, 1 ],
	'enqueued, committed, aborted and waits counted from three other sessions');

# A producer with an open transaction.
my ($p) = txb_session($node);
my $token = $p->query_safe('BEGIN; SELECT barrier_enqueue();');
$token =~ s/\s+//g;

my $registry = sub {
	return $node->safe_psql('postgres',
		"SELECT pid || ':' || (token = '$token'::xid8) || ':' || (waiting_since <= now()) FROM barrier_waiters() ORDER BY pid");
};

# Answered: the slot is freed.
{
	my ($w, $wpid) = txb_session($node);
	txb_start_statement($w, "SELECT barrier_wait('$token', '1 min')");
	ok(txb_wait_blocked($node, $wpid, $token), 'waiter blocked');
	is($registry->(), "$wpid:true:true", 'barrier_waiters shows the waiter, its token and start');

	my ($w2, $w2pid) = txb_session($node);
	txb_start_statement($w2, "SELECT state FROM barrier_wait_all(ARRAY['$token']::xid8[])");
	ok(txb_wait_blocked($node, $w2pid, $token), 'second waiter (wait_all) blocked');
	my @rows = sort ("$wpid:true:true", "$w2pid:true:true");
	is($registry->(), join("\n", sort { $a <=> $b } @rows), 'both waiters listed');

	# cancel one: its slot is freed, the other stays
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($w2pid)");
	my (undef, $err) = txb_collect($w2);
	like($err, qr/57014/, 'cancelled wait_all reports 57014');
	is($registry->(), "$wpid:true:true", 'cancelled waiter is gone from the registry');
	$w2->quit;

	# terminate the other: FATAL path frees the slot too
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($wpid)");
	txb_collect_exit($w);
	ok(txb_pid_gone($node, $wpid), 'terminated waiter is gone');
	is($registry->(), '', 'terminated waiter is gone from the registry');
}

# Timeout and answer free the slot as well.
{
	my ($w, $wpid) = txb_session($node);
	my $state = $w->query_safe("SELECT barrier_wait('$token', '100ms')");
	like($state, qr/in progress/, 'timed-out wait answers in progress');
	is($registry->(), '', 'timed-out waiter is gone from the registry');

	txb_start_statement($w, "SELECT barrier_wait('$token')");
	ok(txb_wait_blocked($node, $wpid, $token), 'waiter blocked again');
	is($registry->(), "$wpid:true:true", 'listed while blocked');
	$p->query_safe('COMMIT');
	my ($out) = txb_collect($w);
	like($out, qr/committed/, 'woken by the commit');
	is($registry->(), '', 'answered waiter is gone from the registry');
	$w->quit;
}

my $final = $node->safe_psql('postgres',
	'SELECT waits_committed > 0, waits_timed_out > 0 FROM barrier_stats()');
is($final, 't|t', 'waits by outcome are counted cluster-wide');

$p->quit;
$node->stop;
done_testing();
