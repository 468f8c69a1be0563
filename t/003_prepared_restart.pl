# A prepared transaction keeps its barrier across server restarts.
#
# After PREPARE TRANSACTION the xid lock moves to the prepared
# transaction's dummy PGPROC and is written to its two-phase state file;
# a restart (fast, or immediate followed by crash recovery) restores the
# prepared transaction with its locks.  A waiter blocks on the token
# before and after each restart, and learns the outcome from COMMIT
# PREPARED or ROLLBACK PREPARED, whichever session runs it.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TxbTest;

my $node = txb_node(
	'prepared',
	allows_streaming => 1,
	conf => "max_prepared_transactions = 5\n");
$node->safe_psql('postgres', 'CREATE TABLE work (id int PRIMARY KEY)');

# Starts a waiter on $token running $sql (a sprintf format for the token)
# and proves it is blocked on one of @xids' locks.
sub blocked_waiter
{
	my ($what, $sql, $token, @xids) = @_;
	my ($w, $wpid) = txb_session($node);
	txb_start_statement($w, sprintf($sql, $token));
	ok(txb_wait_blocked($node, $wpid, @xids),
		"$what: the waiter is blocked on the token's xid lock");
	return $w;
}

# A waiter that is blocked when the server restarts loses its connection.
sub restart_with_waiter
{
	my ($w, $mode, $what) = @_;
	$node->stop($mode);
	my $err = txb_collect_exit($w);
	unlike($err, qr/committed|aborted/,
		"$what: the waiter got no answer before the $mode stop");
	like(
		$err,
		qr/terminating connection|server closed the connection|connection to server was lost/,
		"$what: the $mode stop ended the waiter's connection");
	$node->start;
	return;
}

#
# 1. Commit after a fast and an immediate restart.  The transaction also
#    enqueued from a released savepoint: that token follows its top level.
#
my ($tok1, $sub1);
{
	my ($p) = txb_session($node);
	$p->query_safe('BEGIN');
	$tok1 = $p->query_safe('SELECT barrier_enqueue()');
	$p->query_safe('INSERT INTO work VALUES (1)');
	$sub1 = $p->query_safe(
		'SAVEPOINT s; SELECT barrier_enqueue(); INSERT INTO work VALUES (11); RELEASE s'
	);
	$p->query_safe("PREPARE TRANSACTION 'p1'");
	$p->quit;
	note "p1: token $tok1, savepoint token $sub1";
}

my $w = blocked_waiter('p1 before restart', "SELECT barrier_wait('%s')",
	$tok1, $tok1);
restart_with_waiter($w, 'fast', 'p1');

is($node->safe_psql('postgres', 'SELECT gid FROM pg_prepared_xacts'),
	'p1', 'p1: the prepared transaction survived the fast restart');
is($node->safe_psql('postgres', "SELECT barrier_status('$tok1')"),
	'in progress', 'p1: the token reads in progress after the fast restart');
$w = blocked_waiter('p1 after fast restart', "SELECT barrier_wait('%s')",
	$tok1, $tok1);
restart_with_waiter($w, 'immediate', 'p1');

is($node->safe_psql('postgres', "SELECT barrier_status('$tok1')"),
	'in progress',
	'p1: the token reads in progress after crash recovery');
is($node->safe_psql('postgres', "SELECT barrier_status('$sub1')"),
	'in progress',
	'p1: the savepoint token reads in progress after crash recovery');
is($node->safe_psql('postgres', "SELECT barrier_wait('$tok1', '0')"),
	'in progress', 'p1: a zero-timeout wait reads in progress');

# The waiters read the row in a later statement, with a new snapshot.
$w = blocked_waiter(
	'p1 after immediate restart',
	"SELECT barrier_wait('%s'); SELECT count(*) FROM work WHERE id IN (1, 11)",
	$tok1, $tok1);
# A subtransaction's waiter may sleep on the subtransaction's lock or, once
# it is found to have ended, on its top level's.
my $wsub = blocked_waiter('p1 savepoint token', "SELECT barrier_wait('%s')",
	$sub1, $sub1, $tok1);

$node->safe_psql('postgres', "COMMIT PREPARED 'p1'");

my ($out, $err) = txb_collect($w);
is($out, "committed\n2",
	'p1: after COMMIT PREPARED the waiter returns committed and sees the rows'
);
is($err, '', 'p1: no error in the waiter');
($out, $err) = txb_collect($wsub);
is($out, 'committed', 'p1: the savepoint token\'s waiter returns committed');
$w->quit;
$wsub->quit;
is($node->safe_psql('postgres', "SELECT barrier_status('$tok1')"),
	'committed', 'p1: barrier_status reads committed');

#
# 2. Rollback after an immediate restart.  A token from a savepoint rolled
#    back before PREPARE reads aborted at once.
#
my ($tok2, $rb2);
{
	my ($p) = txb_session($node);
	$p->query_safe('BEGIN');
	$tok2 = $p->query_safe('SELECT barrier_enqueue()');
	$p->query_safe('INSERT INTO work VALUES (2)');
	$rb2 = $p->query_safe(
		'SAVEPOINT s; SELECT barrier_enqueue(); INSERT INTO work VALUES (22); ROLLBACK TO s'
	);
	$p->query_safe("PREPARE TRANSACTION 'p2'");
	$p->quit;
	note "p2: token $tok2, rolled-back savepoint token $rb2";
}

$w = blocked_waiter('p2 before restart', "SELECT barrier_wait('%s')",
	$tok2, $tok2);
restart_with_waiter($w, 'immediate', 'p2');

is($node->safe_psql('postgres', "SELECT barrier_wait('$rb2')"),
	'aborted',
	'p2: the rolled-back savepoint\'s token reads aborted while p2 is prepared'
);

$w = blocked_waiter(
	'p2 after immediate restart',
	"SELECT barrier_wait('%s'); SELECT count(*) FROM work WHERE id = 2",
	$tok2, $tok2);
# A bounded waiter blocks too, and ROLLBACK PREPARED ends its wait early.
my $wb = blocked_waiter('p2 bounded waiter',
	"SELECT barrier_wait('%s', '5 min')",
	$tok2, $tok2);

$node->safe_psql('postgres', "ROLLBACK PREPARED 'p2'");

($out, $err) = txb_collect($w);
is($out, "aborted\n0",
	'p2: after ROLLBACK PREPARED the waiter returns aborted, no row');
is($err, '', 'p2: no error in the waiter');
($out, $err) = txb_collect($wb);
is($out, 'aborted', 'p2: the bounded waiter returns aborted');
$w->quit;
$wb->quit;
is($node->safe_psql('postgres', "SELECT barrier_status('$tok2')"),
	'aborted', 'p2: barrier_status reads aborted');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'),
	'0', 'no prepared transaction is left');

$node->stop;
done_testing();
