# A waiter on a hot standby holds its snapshot while it waits for replay.
# If replay must first remove rows that snapshot can still see (a recovery
# conflict the waiter causes itself), replay waits for the waiter while the
# waiter waits for replay.  It must end with an error within
# max_standby_streaming_delay, never hang: with a finite delay the startup
# process cancels the wait; with -1 (no limit) tx_barrier ends it itself.
# With hot_standby_feedback the conflict never arises and the wait answers.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TxbTest;

my $primary = txb_node('rc_primary', allows_streaming => 1);
$primary->safe_psql('postgres',
	'CREATE TABLE items (id int); CREATE TABLE jobs (id int)');

my $case = 0;
for my $conf (
	[ "max_standby_streaming_delay = 2s", 'error', 'the startup process cancels it' ],
	[ "max_standby_streaming_delay = -1", 'error', 'tx_barrier ends it' ],
	[ "max_standby_streaming_delay = -1\nhot_standby_feedback = on",
		'committed', 'no conflict with hot_standby_feedback' ])
{
	my ($settings, $want, $what) = @$conf;
	$case++;
	my $standby = txb_standby($primary, "rc_standby_$case", conf => $settings);
	$primary->safe_psql('postgres',
		'TRUNCATE items; INSERT INTO items SELECT generate_series(1, 100)');
	$primary->wait_for_catchup($standby);

	# The waiter's snapshot sees the 100 rows ...
	my ($w, $wpid) = txb_session($standby);
	is( $w->query_safe(
			'BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM items'),
		'100', "case $case: the standby snapshot sees the rows");

	# ... which the primary then deletes; a producer starting after that
	# takes a token, and the waiter waits on it with the old snapshot.
	$primary->safe_psql('postgres', 'DELETE FROM items');
	my ($p) = txb_session($primary);
	my $token = $p->query_safe(
		"BEGIN; INSERT INTO jobs VALUES ($case); SELECT barrier_enqueue();");
	$token =~ s/\s+//g;
	$primary->wait_for_catchup($standby);
	txb_start_statement($w, "SELECT barrier_wait('$token')");
	ok(txb_wait_standby_blocked($standby, $wpid),
		"case $case: the standby waiter sleeps");

	# VACUUM removes the deleted rows: its WAL conflicts with the waiter's
	# snapshot unless the standby reported it (hot_standby_feedback).  The
	# commit comes after it in the WAL.
	$primary->safe_psql('postgres', 'VACUUM items');
	$p->query_safe('COMMIT');

	my ($out, $err);
	my $secs = txb_elapsed(sub { ($out, $err) = txb_collect($w) });
	ok(defined $out, "case $case: the wait ended ($what)");
	if ($want eq 'error')
	{
		like($err, qr/ERROR:\s+40001/,
			"case $case: serialization failure (40001), $what");
		cmp_ok($secs, '<', 60, "case $case: within a bounded time");
		$w->query_safe('ROLLBACK');
	}
	else
	{
		like($out, qr/^committed$/m, "case $case: the wait answers committed");
		$w->query_safe('COMMIT');
	}

	# Replay goes on once the snapshot is gone, and the standby agrees.
	$primary->wait_for_catchup($standby);
	is($standby->safe_psql('postgres', "SELECT barrier_status('$token')"),
		'committed', "case $case: replay went on; the token reads committed");
	$w->quit;
	$p->quit;
	$standby->stop;
}

done_testing();
