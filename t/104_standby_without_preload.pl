# Waits on a hot standby when tx_barrier is not preloaded: each waiter
# polls replay itself (no shared memory for a common poller).  The answers
# must be the same as with preloading: a waiter blocks while the primary's
# transaction is open, "committed" comes with the rows visible, and
# "aborted" for a rollback.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TxbTest;

my $primary = txb_node('np_primary', allows_streaming => 1);
$primary->safe_psql('postgres', 'CREATE TABLE jobs (id int)');
my $standby = txb_standby($primary, 'np_standby');

is($standby->safe_psql('postgres', 'SELECT scope FROM barrier_stats()'),
	'session', 'not preloaded on the standby');

for my $case ([ 1, 'COMMIT', 'committed', 1 ], [ 2, 'ROLLBACK', 'aborted', 0 ])
{
	my ($id, $ending, $want, $rows) = @$case;
	my ($p) = txb_session($primary);
	my $token = $p->query_safe("BEGIN; INSERT INTO jobs VALUES ($id); SELECT barrier_enqueue();");
	$token =~ s/\s+//g;
	$primary->wait_for_catchup($standby);

	my ($w, $wpid) = txb_session($standby);
	txb_start_statement($w,
		"SELECT barrier_wait('$token', '1 min'); SELECT count(*) FROM jobs WHERE id = $id");
	ok(txb_wait_standby_blocked($standby, $wpid),
		"$ending: the standby waiter sleeps in the standby wait");
	is($standby->safe_psql('postgres', "SELECT barrier_status('$token')"),
		'in progress', "$ending: still in progress on the standby while open");

	$p->query_safe($ending);
	my ($out) = txb_collect($w);
	like($out, qr/^\Q$want\E\n$rows$/m,
		"$ending: the waiter answers $want and its next query sees $rows row(s)");
	$w->quit;
	$p->quit;
}

$standby->stop;
$primary->stop;
done_testing();
