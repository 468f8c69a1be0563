# Waits on a hot standby: barrier_wait() answers for the primary's
# transaction as replayed on the standby.  "committed" comes only once the
# commit has been replayed there, so the worker's next query on the standby
# sees the rows; aborts, rolled-back savepoints, 2PC, tokens the standby has
# not replayed yet, timeouts, cancellation and promotion are covered too.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use TxbTest;

# recovery_min_apply_delay in part (a): longer than any test run, so that
# what the standby shows before the test lifts it does not depend on speed.
my $apply_delay = 3600;

my $primary = txb_node(
	'primary',
	allows_streaming => 1,
	conf => qq(
max_connections = 30
max_prepared_transactions = 10
shared_preload_libraries = 'tx_barrier'
));
$primary->safe_psql(
	'postgres', q{
CREATE TABLE jobs (id int PRIMARY KEY, payload text);
-- Returns the moment a row becomes visible, checking with a new snapshot
-- each time round (a volatile function in READ COMMITTED).
CREATE FUNCTION visible_at(want int) RETURNS float8 LANGUAGE plpgsql AS $$
BEGIN
	LOOP
		EXIT WHEN EXISTS (SELECT 1 FROM jobs WHERE id = want);
	END LOOP;
	RETURN extract(epoch FROM clock_timestamp());
END $$;
});
my $standby = txb_standby($primary, 'standby',
	conf => "recovery_min_apply_delay = '${apply_delay}s'");

my $producer = $primary->background_psql('postgres');
my ($waiter, $waiter_pid) = txb_session($standby);

# ---------------------------------------------------------------------
# (h) Tokens cannot be handed out on a standby.
{
	my ($ret, $out, $err) = $standby->psql('postgres',
		"\\set VERBOSITY verbose\nSELECT barrier_enqueue()");
	isnt($ret, 0, 'barrier_enqueue on a standby fails');
	like($err, qr/ERROR:\s+25006/,
		'barrier_enqueue on a standby: SQLSTATE 25006 (read_only_sql_transaction)');
}

# ---------------------------------------------------------------------
# (a) A commit is "committed" on the standby only once it is replayed there,
# and the waiter's next query sees the row.  The standby holds commits back
# (recovery_min_apply_delay) until the test lifts the delay.
{
	$producer->query_safe('BEGIN');
	$producer->query_safe(q{INSERT INTO jobs VALUES (1, 'delayed')});
	my $token = $producer->query_safe('SELECT barrier_enqueue()');

	txb_start_statement($waiter, "SELECT barrier_wait('$token')");
	ok(txb_wait_standby_blocked($standby, $waiter_pid),
		'standby waiter sleeps while the transaction is open');

	$producer->query_safe('COMMIT');
	is($primary->safe_psql('postgres', 'SELECT count(*) FROM jobs WHERE id = 1'),
		'1', 'row committed on the primary');

	# First see that the waiter still waits, then that the row is still
	# invisible on the standby: the row was invisible while it waited.
	my $still_waiting = $standby->safe_psql('postgres',
		    "SELECT count(*) FROM pg_stat_activity WHERE pid = $waiter_pid "
		  . "AND state = 'active' AND query ~ 'barrier_wait'");
	my $visible = $standby->safe_psql('postgres',
		'SELECT count(*) FROM jobs WHERE id = 1');
	is($still_waiting, '1', 'waiter still waits after the primary committed');
	is($visible, '0', 'row not yet visible on the standby meanwhile');
	ok(!txb_statement_done($waiter),
		'no answer while the commit is not replayed');

	# Prompt replay from here on: the delayed commit is applied now.
	$standby->append_conf('postgresql.conf', 'recovery_min_apply_delay = 0');
	$standby->reload;
	my ($state, $err) = txb_collect($waiter, limit => 60);
	is($state, 'committed', 'standby waiter: committed after replay');
	is($err, '', 'no error from the standby waiter');
	is($waiter->query_safe('SELECT payload FROM jobs WHERE id = 1'),
		'delayed', "waiter's next query on the standby sees the row");
	$primary->wait_for_catchup($standby);
}

# ---------------------------------------------------------------------
# (b) An abort reads "aborted" on the standby.
{
	$producer->query_safe('BEGIN');
	$producer->query_safe(q{INSERT INTO jobs VALUES (2, 'aborted')});
	my $token = $producer->query_safe('SELECT barrier_enqueue()');
	$primary->wait_for_catchup($standby);
	is($standby->safe_psql('postgres', "SELECT barrier_status('$token')"),
		'in progress', 'standby: open transaction is in progress');

	txb_start_statement($waiter, "SELECT barrier_wait('$token')");
	ok(txb_wait_standby_blocked($standby, $waiter_pid), 'waiter sleeps');
	$producer->query_safe('ROLLBACK');
	my ($state, $err) = txb_collect($waiter, limit => 60);
	is($state, 'aborted', 'standby waiter: aborted');
	is($waiter->query_safe('SELECT count(*) FROM jobs WHERE id = 2'),
		'0', 'aborted row not visible');
}

# ---------------------------------------------------------------------
# (c) A rolled-back savepoint reads "aborted" even though the top level
# commits; a released one follows the top level.
{
	$producer->query_safe('BEGIN');
	$producer->query_safe('SAVEPOINT b');
	$producer->query_safe(q{INSERT INTO jobs VALUES (4, 'released')});
	my $tok_released = $producer->query_safe('SELECT barrier_enqueue()');
	$producer->query_safe('RELEASE SAVEPOINT b');
	$producer->query_safe('SAVEPOINT a');
	$producer->query_safe(q{INSERT INTO jobs VALUES (3, 'rolled back')});
	my $tok_rolled = $producer->query_safe('SELECT barrier_enqueue()');
	$primary->wait_for_catchup($standby);

	my ($waiter2) = txb_session($standby);
	txb_start_statement($waiter, "SELECT barrier_wait('$tok_rolled')");
	txb_start_statement($waiter2, "SELECT barrier_wait('$tok_released')");
	ok(txb_wait_standby_blocked($standby, $waiter_pid),
		'waiter on the savepoint sleeps');

	$producer->query_safe('ROLLBACK TO SAVEPOINT a');
	my ($state) = txb_collect($waiter, limit => 60);
	is($state, 'aborted',
		'rolled-back savepoint: aborted on the standby, top level still open');
	ok(!txb_statement_done($waiter2),
		'released savepoint still waits for its open top level');

	$producer->query_safe(q{INSERT INTO jobs VALUES (5, 'top')});
	$producer->query_safe('COMMIT');
	($state) = txb_collect($waiter2, limit => 60);
	is($state, 'committed', 'released savepoint: committed with its top level');
	is($waiter2->query_safe('SELECT string_agg(id::text, \',\' ORDER BY id) FROM jobs WHERE id IN (3, 4, 5)'),
		'4,5', 'rows of the rolled-back savepoint are absent, top level visible');
	$primary->wait_for_catchup($standby);
	is($standby->safe_psql('postgres', "SELECT barrier_status('$tok_rolled')"),
		'aborted', 'rolled-back savepoint stays aborted after the top-level commit');
	$waiter2->quit;
}

# ---------------------------------------------------------------------
# (d) Two-phase commit: a prepared transaction is still running on the
# standby; COMMIT PREPARED ends the wait with "committed".
{
	$producer->query_safe('BEGIN');
	$producer->query_safe(q{INSERT INTO jobs VALUES (6, 'prepared')});
	my $token = $producer->query_safe('SELECT barrier_enqueue()');
	txb_start_statement($waiter, "SELECT barrier_wait('$token')");
	ok(txb_wait_standby_blocked($standby, $waiter_pid), 'waiter sleeps');
	$producer->query_safe(q{PREPARE TRANSACTION 'txb_p1'});
	$primary->wait_for_catchup($standby);
	is($standby->safe_psql('postgres', "SELECT barrier_status('$token')"),
		'in progress', 'prepared transaction is in progress on the standby');
	ok(!txb_statement_done($waiter), 'waiter keeps waiting after PREPARE replayed');
	$primary->safe_psql('postgres', q{COMMIT PREPARED 'txb_p1'});
	my ($state) = txb_collect($waiter, limit => 60);
	is($state, 'committed', 'COMMIT PREPARED: committed on the standby');
	is($waiter->query_safe('SELECT count(*) FROM jobs WHERE id = 6'),
		'1', 'prepared row visible after the wait');
}

# ---------------------------------------------------------------------
# (e) A token the standby has not replayed yet ("from the future") is
# waited for, not an error.
{
	$standby->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
	$standby->poll_query_until('postgres',
		"SELECT pg_get_wal_replay_pause_state() = 'paused'")
	  or die 'replay did not pause';
	my $replayed = $standby->safe_psql('postgres', 'SELECT pg_last_wal_replay_lsn()');

	$producer->query_safe('BEGIN');
	my $before = $producer->query_safe('SELECT pg_current_wal_insert_lsn()');
	my $token = $producer->query_safe('SELECT barrier_enqueue()');
	$producer->query_safe(q{INSERT INTO jobs VALUES (7, 'future')});
	is( $primary->safe_psql('postgres',
			"SELECT '$replayed'::pg_lsn <= '$before'::pg_lsn"),
		't', 'standby has not replayed any WAL of the token\'s transaction');

	my ($ret, $out, $err) = $standby->psql('postgres',
		"SELECT barrier_status('$token')");
	is($out, 'in progress', 'future token: barrier_status says in progress');
	is($err, '', 'future token: no error on the standby');
	my $t0 = time;
	($ret, $out, $err) = $standby->psql('postgres',
		"SELECT barrier_wait('$token', '200ms')");
	is($out, 'in progress', 'future token: bounded wait times out, no error');
	cmp_ok(time - $t0, '>=', 0.19, 'future token: the bounded wait waited');

	txb_start_statement($waiter, "SELECT barrier_wait('$token')");
	ok(txb_wait_standby_blocked($standby, $waiter_pid), 'waiter on a future token sleeps');
	$standby->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
	$primary->wait_for_catchup($standby);
	ok(!txb_statement_done($waiter), 'still waiting once the token\'s start is replayed');
	$producer->query_safe('COMMIT');
	my ($state) = txb_collect($waiter, limit => 60);
	is($state, 'committed', 'future token: committed once replayed');
	is($waiter->query_safe('SELECT count(*) FROM jobs WHERE id = 7'),
		'1', 'future token: row visible after the wait');
}

# ---------------------------------------------------------------------
# (f) Timeouts and cancellation on the standby.
{
	$producer->query_safe('BEGIN');
	$producer->query_safe(q{INSERT INTO jobs VALUES (8, 'slow')});
	my $token = $producer->query_safe('SELECT barrier_enqueue()');
	$primary->wait_for_catchup($standby);

	my $timed_out_before = $standby->safe_psql('postgres',
		'SELECT waits_timed_out FROM barrier_stats()');
	my $t0 = time;
	is($standby->safe_psql('postgres', "SELECT barrier_wait('$token', '300ms')"),
		'in progress', 'standby timeout returns in progress');
	my $took = time - $t0;
	cmp_ok($took, '>=', 0.29, 'standby timeout waited its time');
	cmp_ok($took, '<', 120, 'standby timeout did not hang');
	cmp_ok(
		$standby->safe_psql('postgres', 'SELECT waits_timed_out FROM barrier_stats()'),
		'>', $timed_out_before, 'standby counts the timed-out wait');

	my ($ret, $out, $err) = $standby->psql('postgres',
		"SET statement_timeout = '200ms'; SELECT barrier_wait('$token')");
	like($err, qr/statement timeout/, 'statement_timeout ends a standby wait');

	txb_start_statement($waiter, "SELECT barrier_wait('$token')");
	ok(txb_wait_standby_blocked($standby, $waiter_pid), 'waiter sleeps');
	# The wait shows as its own wait event while it sleeps between checks.
	ok(txb_wait_standby_blocked($standby, $waiter_pid),
		'standby wait shows ' . txb_standby_wait_event($standby));
	is( $standby->safe_psql('postgres',
			"SELECT count(*) FROM barrier_waiters() WHERE pid = $waiter_pid AND token = '$token' AND waiting_since <= now()"
		),
		'1', 'barrier_waiters() on the standby lists the waiter and its token');
	$standby->safe_psql('postgres', "SELECT pg_cancel_backend($waiter_pid)");
	my ($o, $e) = txb_collect($waiter, limit => 30);
	like($e, qr/canceling statement due to user request/,
		'pg_cancel_backend interrupts a standby wait');
	is($waiter->query_safe('SELECT 1'), '1', 'session usable after the cancel');
	is($standby->safe_psql('postgres', "SELECT count(*) FROM barrier_waiters() WHERE pid = $waiter_pid"),
		'0', 'a cancelled wait leaves barrier_waiters()');
	$producer->query_safe('COMMIT');
}

# ---------------------------------------------------------------------
# Wake-up latency: from the moment the commit becomes visible on the
# standby (seen by a session re-checking with fresh snapshots) to the
# waiter's answer.
{
	$primary->wait_for_catchup($standby);
	my $detector = $standby->background_psql('postgres');
	my (@lat, @e2e, @states);
	for my $i (1 .. 20)
	{
		my $id = 1000 + $i;
		$producer->query_safe('BEGIN');
		$producer->query_safe("INSERT INTO jobs VALUES ($id, 'latency')");
		my $token = $producer->query_safe('SELECT barrier_enqueue()');
		txb_start_statement($waiter,
			"SELECT w, extract(epoch FROM clock_timestamp()), "
			  . "extract(epoch FROM pg_last_xact_replay_timestamp()) FROM "
			  . "(SELECT barrier_wait('$token') AS w OFFSET 0) s");
		txb_wait_standby_blocked($standby, $waiter_pid);
		txb_start_statement($detector, "SELECT visible_at($id)");
		$producer->query_safe('COMMIT');
		my ($answer) = txb_collect($waiter, limit => 30);
		my ($vis) = txb_collect($detector, limit => 30);
		my ($state, $t_answer, $t_commit) = split /\|/, $answer;
		push @states, $state;
		push @lat, ($t_answer - $vis) * 1000;
		push @e2e, ($t_answer - $t_commit) * 1000;
	}
	is(join(',', @states), join(',', ('committed') x 20),
		'latency rounds: every waiter answered committed');
	my @s = sort { $a <=> $b } @lat;
	my @e = sort { $a <=> $b } @e2e;
	diag(sprintf(
			"standby: row visible -> waiter answer (ms, %d rounds): min %.3f median %.3f max %.3f",
			scalar(@s), $s[0], $s[ int($#s / 2) ], $s[-1]));
	diag(sprintf(
			"standby: primary commit record -> waiter answer (ms): min %.3f median %.3f max %.3f",
			$e[0], $e[ int($#e / 2) ], $e[-1]));
	# How fast is measured by bench/standby_latency.sh, not asserted here:
	# a loaded machine would fail any bound.
	$detector->quit;
}

# ---------------------------------------------------------------------
# barrier_wait_all on the standby answers each token.
{
	$producer->query_safe('BEGIN');
	$producer->query_safe(q{INSERT INTO jobs VALUES (9, 'a')});
	my $t_commit = $producer->query_safe('SELECT barrier_enqueue()');
	$producer->query_safe('COMMIT');
	$producer->query_safe('BEGIN');
	$producer->query_safe(q{INSERT INTO jobs VALUES (10, 'b')});
	my $t_abort = $producer->query_safe('SELECT barrier_enqueue()');
	$producer->query_safe('ROLLBACK');
	$primary->wait_for_catchup($standby);
	is( $standby->safe_psql('postgres',
			"SELECT string_agg(state::text, ',') FROM barrier_wait_all(ARRAY['$t_commit', '$t_abort']::xid8[], '10s')"
		),
		'committed,aborted',
		'barrier_wait_all on the standby');
}

# ---------------------------------------------------------------------
# (g) The standby is promoted while a waiter waits on a transaction that
# was still open when the primary went away: the transaction is lost, the
# waiter answers "aborted".
{
	$producer->query_safe('BEGIN');
	$producer->query_safe(q{INSERT INTO jobs VALUES (11, 'lost')});
	my $token = $producer->query_safe('SELECT barrier_enqueue()');
	$primary->wait_for_catchup($standby);

	txb_start_statement($waiter, "SELECT barrier_wait('$token')");
	ok(txb_wait_standby_blocked($standby, $waiter_pid), 'waiter sleeps before promotion');

	# The producer's session dies with its server.
	$primary->stop('immediate');
	eval { $producer->quit };
	ok(!txb_statement_done($waiter), 'waiter still waits with the primary gone');

	$standby->promote;
	my ($state, $err) = txb_collect($waiter, limit => 60);
	is($state, 'aborted', 'promotion: waiter on the lost transaction answers aborted');
	is($err, '', 'no error from the waiter across promotion');
	is($standby->safe_psql('postgres', "SELECT barrier_status('$token')"),
		'aborted', 'promoted server: lost token reads aborted');
	is($standby->safe_psql('postgres', 'SELECT count(*) FROM jobs WHERE id = 11'),
		'0', 'lost row absent');
}

$waiter->quit;
$standby->stop;
done_testing();
