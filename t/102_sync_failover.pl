# Failover semantics of barrier tokens.
#
# Synchronous replication: barrier_enqueue() returns only once the standby
# has flushed the WAL that carries the token's xid.  If the primary then
# dies before COMMIT and the standby is promoted, the promoted server has
# already counted that xid as used: new transactions get later xids, and the
# old token reads "aborted", never "committed" and never "in the future".
#
# Asynchronous replication, for contrast: a token whose WAL had not reached
# the standby is lost in the failover, and its number is handed out again
# by the promoted server, to an unrelated transaction.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TxbTest;

# Runs enough short transactions that get an xid to pass $token's xid.
sub burn_xids
{
	my ($node, $n) = @_;
	$node->safe_psql('postgres', qq{
DO \$\$
BEGIN
	FOR i IN 1 .. $n LOOP
		INSERT INTO burn VALUES (pg_current_xact_id());
		COMMIT;
	END LOOP;
END \$\$;
});
	return;
}

# Sets up a primary with extension and tables, and a streaming standby.
sub make_pair
{
	my ($name) = @_;
	my $primary = txb_node("${name}_primary", allows_streaming => 1);
	$primary->safe_psql('postgres',
		'CREATE TABLE jobs (id int, payload text); CREATE TABLE burn (xid xid8)');
	# The name the primary's synchronous_standby_names refers to.
	my $standby = txb_standby($primary, "${name}_standby",
		conf => "cluster_name = '${name}_standby'");
	return ($primary, $standby);
}

# ---------------------------------------------------------------------
# Synchronous replication.
{
	my ($primary, $standby) = make_pair('sync');
	$primary->append_conf('postgresql.conf',
		"synchronous_standby_names = 'sync_standby'");
	$primary->reload;
	ok( $primary->poll_query_until('postgres',
			"SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'sync_standby'"
		),
		'standby is synchronous');

	# While the standby is down, barrier_enqueue() cannot return: it waits
	# for the standby to flush the token's WAL, as a commit would.
	$standby->stop;
	my ($producer, $pid) = txb_session($primary);
	$producer->query_safe('BEGIN');
	$producer->query_safe(q{INSERT INTO jobs VALUES (1, 'never committed')});
	txb_start_statement($producer, 'SELECT barrier_enqueue()');
	ok( $primary->poll_query_until('postgres',
			"SELECT wait_event = 'SyncRep' FROM pg_stat_activity WHERE pid = $pid"),
		'barrier_enqueue waits for the synchronous standby (wait event SyncRep)');
	ok(!txb_statement_done($producer),
		'no token handed out before the standby has it');

	# Cancelling such a wait must not hand out the unreplicated token
	# (PostgreSQL's own wait only warns, as it would for a commit).
	my ($cancelled, $cpid) = txb_session($primary);
	$cancelled->query_safe('BEGIN');
	txb_start_statement($cancelled, 'SELECT barrier_enqueue()');
	ok( $primary->poll_query_until('postgres',
			"SELECT wait_event = 'SyncRep' FROM pg_stat_activity WHERE pid = $cpid"),
		'second enqueue waits for the standby too');
	$primary->safe_psql('postgres', "SELECT pg_cancel_backend($cpid)");
	my ($cout, $cerr) = txb_collect($cancelled, limit => 60);
	like($cerr,
		qr/canceled the wait for synchronous replication of a barrier token/,
		'cancelled enqueue raises an error');
	unlike($cout // '', qr/^\d+$/m, 'and returns no token');
	is($cancelled->query('SELECT 1'), '',
		'its transaction is aborted (statements fail until ROLLBACK)');
	$cancelled->quit;

	$standby->start;
	my ($out) = txb_collect($producer, limit => 60);
	my ($token) = ($out // '') =~ /^(\d+)$/m;
	ok(defined $token, 'barrier_enqueue returns once the standby is back');
	my $flushed = $primary->safe_psql('postgres',
		"SELECT flush_lsn >= pg_current_wal_flush_lsn() FROM pg_stat_replication WHERE application_name = 'sync_standby'"
	);
	is($flushed, 't', "standby has flushed all WAL up to the token's record");

	# The primary dies before COMMIT; the standby takes over.
	$primary->stop('immediate');
	eval { $producer->quit };
	$standby->promote;
	is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
		'f', 'standby promoted');

	is($standby->safe_psql('postgres', "SELECT barrier_status('$token')"),
		'aborted', 'promoted server: the lost token reads aborted at once');

	burn_xids($standby, 50);
	is( $standby->safe_psql('postgres',
			"SELECT count(*) FROM burn WHERE xid = '$token'::xid8"),
		'0', 'no new transaction reused the token\'s xid');
	is( $standby->safe_psql('postgres',
			"SELECT min(xid) > '$token'::xid8 FROM burn"),
		't', 'new transactions on the promoted server got later xids');
	is($standby->safe_psql('postgres', "SELECT barrier_status('$token')"),
		'aborted', 'after new transactions the token still reads aborted');
	is($standby->safe_psql('postgres', "SELECT barrier_wait('$token', '5s')"),
		'aborted', 'barrier_wait on the lost token: aborted, no wait');
	is($standby->safe_psql('postgres', "SELECT pg_xact_status('$token')"),
		'aborted', 'pg_xact_status agrees');
	is($standby->safe_psql('postgres', 'SELECT count(*) FROM jobs'),
		'0', 'the lost transaction\'s row is absent');
	$standby->stop;
}

# ---------------------------------------------------------------------
# Asynchronous replication: what can be lost.  The standby does not receive
# the WAL of the token's transaction before the primary dies; after the
# failover the same number names a different, committed transaction.  This
# is the documented limit of asynchronous failover, not something a
# barrier can detect on the promoted server.
{
	my ($primary, $standby) = make_pair('async');
	$standby->stop;

	my $producer = $primary->background_psql('postgres');
	$producer->query_safe('BEGIN');
	$producer->query_safe(q{INSERT INTO jobs VALUES (1, 'never committed')});
	my $token = $producer->query_safe('SELECT barrier_enqueue()');
	ok($token =~ /^\d+$/,
		'async: barrier_enqueue returns without any standby');
	$primary->stop('immediate');
	eval { $producer->quit };

	$standby->start;
	$standby->promote;
	burn_xids($standby, 50);
	is( $standby->safe_psql('postgres',
			"SELECT count(*) FROM burn WHERE xid = '$token'::xid8"),
		'1', 'async: the promoted server reused the lost token\'s xid');
	is($standby->safe_psql('postgres', "SELECT barrier_status('$token')"),
		'committed',
		'async: the lost token now names an unrelated committed transaction');
	$standby->stop;
}

done_testing();
