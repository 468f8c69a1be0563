# A producer that dies before committing: its waiters learn 'aborted'.
#
# 1. pg_terminate_backend(producer): the backend aborts its transaction and
#    releases its xid lock; the blocked waiter wakes and returns 'aborted'.
# 2. kill -9 of the producer backend: the postmaster treats it as a crash,
#    kills every backend (the waiter too) and restarts.  After the restart
#    the token reads 'aborted' and its row is not there.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TxbTest;

# The test framework turns restart_after_crash off; the server default is on.
my $node = txb_node(
	'killed',
	allows_streaming => 1,
	conf => "restart_after_crash = on\n");
$node->safe_psql('postgres', 'CREATE TABLE work (id int PRIMARY KEY)');

# A producer that has enqueued a barrier and inserted row $id, and a
# waiter proved to be blocked on the token.
sub producer_and_waiter
{
	my ($id, $waiter_sql) = @_;
	my ($p, $ppid) = txb_session($node);
	$p->query_safe('BEGIN');
	my $token = $p->query_safe('SELECT barrier_enqueue()');
	$p->query_safe("INSERT INTO work VALUES ($id)");

	my ($w, $wpid) = txb_session($node);
	txb_start_statement($w, sprintf($waiter_sql, $token));
	ok(txb_wait_blocked($node, $wpid, $token),
		"row $id: the waiter is blocked on the token's xid lock (token $token)"
	);
	is($node->safe_psql('postgres', "SELECT barrier_status('$token')"),
		'in progress', "row $id: the token reads in progress");
	return ($p, $ppid, $w, $wpid, $token);
}

#
# 1. pg_terminate_backend
#
{
	my ($p, $ppid, $w, $wpid, $token) = producer_and_waiter(1,
		"SELECT barrier_wait('%s'); SELECT count(*) FROM work WHERE id = 1");

	is( $node->safe_psql('postgres', "SELECT pg_terminate_backend($ppid)"),
		't', 'terminate: pg_terminate_backend(producer)');

	my ($out, $err) = txb_collect($w);
	is($out, "aborted\n0",
		'terminate: the waiter returns aborted and does not see the row');
	is($err, '', 'terminate: no error in the waiter');

	like(txb_collect_exit($p, idle => 1), qr/terminating connection due to administrator command|connection to server was lost/,
		'terminate: the producer\'s connection is gone');
	is($node->safe_psql('postgres', "SELECT barrier_status('$token')"),
		'aborted', 'terminate: barrier_status reads aborted');

	# The waiter's session is unharmed.
	is($w->query_safe('SELECT 1'), '1',
		'terminate: the waiter\'s session goes on');
	$w->quit;
}

#
# 2. kill -9 of the producer backend
#
{
	my ($p, $ppid, $w, $wpid, $token) =
	  producer_and_waiter(2, "SELECT barrier_wait('%s')");

	my $log_offset = -s $node->logfile;
	is(kill('KILL', $ppid), 1, 'kill -9: signal sent to the producer backend');

	# The postmaster kills every other backend, the waiter included.
	my $err = txb_collect_exit($w);
	unlike($err, qr/committed/, 'kill -9: the waiter never saw committed');
	like(
		$err,
		qr/terminating connection because of crash of another server process|server closed the connection unexpectedly|connection to server was lost/,
		'kill -9: the waiter\'s connection was ended by the crash');
	txb_collect_exit($p, idle => 1);

	$node->wait_for_log(qr/all server processes terminated; reinitializing/,
		$log_offset);
	ok($node->poll_query_until('postgres', 'SELECT 1', '1'),
		'kill -9: the server accepts connections again');

	is($node->safe_psql('postgres', "SELECT barrier_status('$token')"),
		'aborted', 'kill -9: barrier_status reads aborted after the restart');
	is($node->safe_psql('postgres', "SELECT barrier_wait('$token')"),
		'aborted', 'kill -9: barrier_wait returns aborted after the restart');
	is( $node->safe_psql(
			'postgres', "SELECT '$token'::xid8 < pg_current_xact_id()"),
		't', 'kill -9: the token is below the next xid');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM work WHERE id = 2'),
		'0', 'kill -9: the producer\'s row is not there');

	# The same kind of transaction now works normally.
	my ($p2) = txb_session($node);
	$p2->query_safe('BEGIN');
	my $t2 = $p2->query_safe('SELECT barrier_enqueue()');
	$p2->query_safe('INSERT INTO work VALUES (2)');
	$p2->query_safe('COMMIT');
	cmp_ok($t2, '>', $token, 'kill -9: a new token is above the lost one');
	is($node->safe_psql('postgres', "SELECT barrier_wait('$t2')"),
		'committed', 'kill -9: a new barrier transaction commits normally');
	$p2->quit;
}

$node->stop;
done_testing();
