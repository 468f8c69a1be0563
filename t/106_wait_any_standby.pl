# barrier_wait_any() on a hot standby, and interrupted while it sleeps.
#
# On the standby a token's transaction ends by replay: "committed" comes
# only once the commit is replayed (the standby holds commits back with
# recovery_min_apply_delay until the test lifts it), and the waiter's next
# query sees the rows; aborts, rolled-back savepoints, 2PC and tokens the
# standby has not replayed yet are covered too, with and without
# tx_barrier preloaded on the standby.  On the primary (preloaded) a
# sleeping call is ended by pg_cancel_backend and pg_terminate_backend,
# and leaves the registry behind it clean: barrier_waiters() has no row for
# it, and the token's later end wakes only those still waiting.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use TxbTest;

my $primary = txb_node(
	'any_primary',
	allows_streaming => 1,
	conf => qq(
max_connections = 30
max_prepared_transactions = 10
shared_preload_libraries = 'tx_barrier'
));
$primary->safe_psql('postgres',
	'CREATE TABLE jobs (id int PRIMARY KEY, payload text)');
# Longer than any test run: nothing the standby shows before the test lifts
# it depends on speed.
my $standby = txb_standby($primary, 'any_standby',
	conf => "recovery_min_apply_delay = '3600s'");

my ($p1) = txb_session($primary);
my ($p2) = txb_session($primary);
my ($waiter, $waiter_pid) = txb_session($standby);

# Opens a transaction in $p with a row $id and returns its token.
sub produce
{
	my ($p, $id) = @_;
	$p->query_safe('BEGIN');
	$p->query_safe("INSERT INTO jobs VALUES ($id, 'job $id')");
	return $p->query_safe('SELECT barrier_enqueue()');
}

# The statement a waiter runs: one line "token|state" per answered token.
sub wait_any_sql
{
	my ($timeout, @tokens) = @_;
	my $arr = join(', ', map { "'$_'" } @tokens);
	my $tmo = defined $timeout ? ", '$timeout'" : '';
	return "SELECT token, state FROM barrier_wait_any(ARRAY[$arr]::xid8[]$tmo)";
}

sub standby_status
{
	my ($token) = @_;
	return $standby->safe_psql('postgres', "SELECT barrier_status('$token')");
}

# ---------------------------------------------------------------------
# (a) Two running tokens; one commits on the primary.  Its commit reaches
# the standby but is held back from replay: the waiter keeps sleeping.
# Once replayed, it answers exactly that token, and its next query sees
# the row.
my $t3;
{
	my $t1 = produce($p1, 1);
	my $t2 = produce($p2, 2);
	$primary->wait_for_catchup($standby);

	txb_start_statement($waiter, wait_any_sql(undef, $t1, $t2));
	ok(txb_wait_standby_blocked($standby, $waiter_pid),
		'standby: wait_any on two running tokens sleeps');
	is( $standby->safe_psql('postgres',
			"SELECT count(*) FROM barrier_waiters() WHERE pid = $waiter_pid AND token IN ('$t1', '$t2')"
		),
		'2', 'standby (preloaded): barrier_waiters() lists both tokens');

	$p1->query_safe('COMMIT');
	# The commit record is on the standby (written there), not replayed.
	$primary->wait_for_catchup($standby, 'write');
	is(standby_status($t1), 'in progress',
		'standby: the held commit is still in progress there');
	is($standby->safe_psql('postgres', 'SELECT count(*) FROM jobs WHERE id = 1'),
		'0', 'standby: the row is not visible yet');
	ok(!txb_statement_done($waiter),
		'standby: no answer while the commit is not replayed');
	ok(txb_wait_standby_blocked($standby, $waiter_pid),
		'standby: the waiter still sleeps');

	$standby->append_conf('postgresql.conf', 'recovery_min_apply_delay = 0');
	$standby->reload;
	my ($out, $err) = txb_collect($waiter, limit => 120);
	is($out, "$t1|committed",
		'standby: after replay exactly the committed token is answered');
	is($err, '', 'standby: no error from the waiter');
	is($waiter->query_safe('SELECT payload FROM jobs WHERE id = 1'),
		'job 1', "standby: the waiter's next query sees the row");
	is( $standby->safe_psql('postgres',
			"SELECT count(*) FROM barrier_waiters() WHERE pid = $waiter_pid"),
		'0', 'standby: an answered wait leaves barrier_waiters()');
	$primary->wait_for_catchup($standby);

	# (b) An abort.
	$t3 = produce($p1, 3);
	$primary->wait_for_catchup($standby);
	txb_start_statement($waiter, wait_any_sql(undef, $t2, $t3));
	ok(txb_wait_standby_blocked($standby, $waiter_pid),
		'standby: wait_any sleeps before the abort');
	$p2->query_safe('ROLLBACK');
	($out, $err) = txb_collect($waiter, limit => 120);
	is($out, "$t2|aborted", 'standby: the rolled-back token is aborted');
	is($err, '', 'standby: no error after the abort');
	is($waiter->query_safe('SELECT count(*) FROM jobs WHERE id = 2'),
		'0', 'standby: the aborted row is absent');
}

# ---------------------------------------------------------------------
# (c) A token taken in a savepoint that is rolled back: aborted while its
# top level is still open.
{
	$p2->query_safe('BEGIN');
	$p2->query_safe("INSERT INTO jobs VALUES (4, 'top')");
	my $top = $p2->query_safe('SELECT pg_current_xact_id()');
	$p2->query_safe('SAVEPOINT a');
	$p2->query_safe("INSERT INTO jobs VALUES (5, 'rolled back')");
	my $sub = $p2->query_safe('SELECT barrier_enqueue()');
	isnt($sub, $top, 'the savepoint has its own token');
	$primary->wait_for_catchup($standby);

	txb_start_statement($waiter, wait_any_sql(undef, $t3, $sub));
	ok(txb_wait_standby_blocked($standby, $waiter_pid),
		'standby: wait_any on a savepoint token sleeps');
	$p2->query_safe('ROLLBACK TO SAVEPOINT a');
	my ($out, $err) = txb_collect($waiter, limit => 120);
	is($out, "$sub|aborted",
		'standby: the rolled-back savepoint is aborted');
	is(standby_status($top), 'in progress',
		'standby: its top level is still open meanwhile');
	$p2->query_safe('COMMIT');
	$primary->wait_for_catchup($standby);
	is(standby_status($sub), 'aborted',
		'standby: the savepoint stays aborted after the top-level commit');
	is($waiter->query_safe('SELECT string_agg(id::text, \',\' ORDER BY id) FROM jobs WHERE id IN (4, 5)'),
		'4', "standby: the top level's row is visible, the savepoint's is not");
}

# ---------------------------------------------------------------------
# (d) Two-phase commit: running on the standby after PREPARE TRANSACTION,
# committed once COMMIT PREPARED is replayed.
{
	my $tok = produce($p2, 6);
	txb_start_statement($waiter, wait_any_sql(undef, $t3, $tok));
	ok(txb_wait_standby_blocked($standby, $waiter_pid),
		'standby: wait_any on a transaction to be prepared sleeps');
	$p2->query_safe(q{PREPARE TRANSACTION 'txb_any_2pc'});
	$primary->wait_for_catchup($standby);
	is(standby_status($tok), 'in progress',
		'standby: the prepared transaction is in progress');
	ok(!txb_statement_done($waiter),
		'standby: no answer once PREPARE is replayed');
	$primary->safe_psql('postgres', q{COMMIT PREPARED 'txb_any_2pc'});
	my ($out, $err) = txb_collect($waiter, limit => 120);
	is($out, "$tok|committed", 'standby: COMMIT PREPARED answers committed');
	is($waiter->query_safe('SELECT count(*) FROM jobs WHERE id = 6'),
		'1', 'standby: the prepared row is visible in the next query');
}

# ---------------------------------------------------------------------
# (e) A token the standby has not replayed any WAL of: a bounded wait_any
# returns no rows, not an error (barrier_wait says "in progress"); an
# unbounded one waits for it like for a running one.
{
	$standby->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
	$standby->poll_query_until('postgres',
		"SELECT pg_get_wal_replay_pause_state() = 'paused'")
	  or die 'replay did not pause';
	my $replayed =
	  $standby->safe_psql('postgres', 'SELECT pg_last_wal_replay_lsn()');

	$p2->query_safe('BEGIN');
	my $before = $p2->query_safe('SELECT pg_current_wal_insert_lsn()');
	my $tok = $p2->query_safe('SELECT barrier_enqueue()');
	$p2->query_safe("INSERT INTO jobs VALUES (7, 'future')");
	is( $primary->safe_psql('postgres',
			"SELECT '$replayed'::pg_lsn <= '$before'::pg_lsn"),
		't', "future token: the standby has replayed none of its WAL");

	my ($ret, $out, $err) = $standby->psql('postgres',
		"SELECT barrier_wait('$tok', '100ms')");
	is($out, 'in progress', 'future token: barrier_wait says in progress');
	my $t0 = time;
	($ret, $out, $err) = $standby->psql('postgres',
		"SELECT count(*) FROM barrier_wait_any(ARRAY['$tok']::xid8[], '200ms')");
	is($out, '0', 'future token: bounded wait_any returns no rows');
	is($err, '', 'future token: no error');
	cmp_ok(time - $t0, '>=', 0.19, 'future token: the bounded wait_any waited');
	($ret, $out, $err) = $standby->psql('postgres',
		"SELECT count(*) FROM barrier_wait_any(ARRAY['$tok', '$t3']::xid8[], '200ms')");
	is($out, '0', 'future and running token: no rows after the timeout');
	is($err, '', 'future and running token: no error');

	txb_start_statement($waiter, wait_any_sql(undef, $tok));
	ok(txb_wait_standby_blocked($standby, $waiter_pid),
		'future token: unbounded wait_any sleeps');
	$standby->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
	$primary->wait_for_catchup($standby);
	ok(!txb_statement_done($waiter),
		"future token: still waiting once its start is replayed");
	$p2->query_safe('COMMIT');
	($out, $err) = txb_collect($waiter, limit => 120);
	is($out, "$tok|committed", 'future token: committed once replayed');
	is($waiter->query_safe('SELECT count(*) FROM jobs WHERE id = 7'),
		'1', 'future token: the row is visible after the wait');
}

# ---------------------------------------------------------------------
# (f) statement_timeout and pg_cancel_backend end a standby wait_any with
# 57014; the session goes on and its registration is gone.
{
	$waiter->query_safe("SET statement_timeout = '200ms'");
	txb_start_statement($waiter, wait_any_sql(undef, $t3));
	my ($out, $err) = txb_collect($waiter, limit => 120);
	like(
		$err,
		qr/ERROR:\s+57014: canceling statement due to statement timeout/,
		'standby: statement_timeout ends wait_any with 57014');
	$waiter->query_safe('RESET statement_timeout');
	is( $standby->safe_psql('postgres',
			"SELECT count(*) FROM barrier_waiters() WHERE pid = $waiter_pid"),
		'0', 'standby: a timed-out wait leaves barrier_waiters()');

	txb_start_statement($waiter, wait_any_sql(undef, $t3));
	ok(txb_wait_standby_blocked($standby, $waiter_pid),
		'standby: wait_any sleeps before the cancel');
	$standby->safe_psql('postgres', "SELECT pg_cancel_backend($waiter_pid)");
	($out, $err) = txb_collect($waiter, limit => 120);
	like(
		$err,
		qr/ERROR:\s+57014: canceling statement due to user request/,
		'standby: pg_cancel_backend ends wait_any with 57014');
	is($waiter->query_safe('SELECT 1'), '1',
		'standby: the session is usable after the cancel');
	is( $standby->safe_psql('postgres',
			"SELECT count(*) FROM barrier_waiters() WHERE pid = $waiter_pid"),
		'0', 'standby: a cancelled wait leaves barrier_waiters()');
}

# ---------------------------------------------------------------------
# (g) The primary: pg_cancel_backend of a sleeping wait_any.  Its
# registration goes with it; another session's wait on the same token is
# woken by the commit, and the cancelled session's next call answers at
# once.
{
	my ($w, $wpid) = txb_session($primary);
	txb_start_statement($w, wait_any_sql(undef, $t3));
	ok(txb_wait_any_blocked($primary, $wpid, $t3),
		'primary: wait_any sleeps, listed in barrier_waiters()');
	$primary->safe_psql('postgres', "SELECT pg_cancel_backend($wpid)");
	my ($out, $err) = txb_collect($w, limit => 120);
	like(
		$err,
		qr/ERROR:\s+57014: canceling statement due to user request/,
		'primary: pg_cancel_backend ends wait_any with 57014');
	is($out, '', 'primary: the cancelled call returned no rows');
	is( $primary->safe_psql('postgres',
			"SELECT count(*) FROM barrier_waiters() WHERE pid = $wpid"),
		'0', 'primary: no barrier_waiters() row for the cancelled session');
	is($w->query_safe('SELECT 1'), '1',
		'primary: the session is usable after the cancel');

	my ($w2, $w2pid) = txb_session($primary);
	txb_start_statement($w2, wait_any_sql(undef, $t3));
	ok(txb_wait_any_blocked($primary, $w2pid, $t3),
		'primary: a second session waits on the same token');
	is( $primary->safe_psql('postgres',
			"SELECT string_agg(pid::text, ',') FROM barrier_waiters() WHERE token = '$t3'"),
		$w2pid, 'primary: only the second session waits on the token');

	$p1->query_safe('COMMIT');
	($out, $err) = txb_collect($w2, limit => 120);
	is($out, "$t3|committed", 'primary: the commit wakes the second session');
	is($err, '', 'primary: no error in the second session');
	txb_start_statement($w, wait_any_sql(undef, $t3));
	($out, $err) = txb_collect($w, limit => 120);
	is($out, "$t3|committed",
		'primary: the cancelled session answers committed at once');
	is($err, '', 'primary: no error in the cancelled session afterwards');
	is($w->query_safe('SELECT count(*) FROM jobs WHERE id = 3'),
		'1', 'primary: the cancelled session sees the row');
	is($primary->safe_psql('postgres', 'SELECT count(*) FROM barrier_waiters()'),
		'0', 'primary: nobody left in barrier_waiters()');
	$w->quit;
	$w2->quit;
}

# ---------------------------------------------------------------------
# (h) The primary: pg_terminate_backend of a sleeping wait_any frees its
# registry slot; a new session waits and is woken.
{
	my $tok = produce($p1, 8);
	my ($w, $wpid) = txb_session($primary);
	txb_start_statement($w, wait_any_sql(undef, $tok));
	ok(txb_wait_any_blocked($primary, $wpid, $tok),
		'terminate: wait_any sleeps');
	$primary->safe_psql('postgres', "SELECT pg_terminate_backend($wpid)");
	ok(txb_pid_gone($primary, $wpid), 'terminate: the backend is gone');
	like(
		txb_collect_exit($w),
		qr/FATAL:\s+57P01: terminating connection due to administrator command/,
		'terminate: the connection ends with 57P01');
	is($primary->safe_psql('postgres', 'SELECT count(*) FROM barrier_waiters()'),
		'0', 'terminate: barrier_waiters() has no row left');

	my ($w2, $w2pid) = txb_session($primary);
	txb_start_statement($w2, wait_any_sql(undef, $tok));
	ok(txb_wait_any_blocked($primary, $w2pid, $tok),
		'terminate: a new session waits on the token');
	is( $primary->safe_psql('postgres',
			"SELECT string_agg(pid::text, ',') FROM barrier_waiters() WHERE token = '$tok'"),
		$w2pid, 'terminate: only the new session is listed');
	$p1->query_safe('COMMIT');
	my ($out, $err) = txb_collect($w2, limit => 120);
	is($out, "$tok|committed", 'terminate: the new session is woken by the commit');
	is($err, '', 'terminate: no error in the new session');
	$w2->quit;
}

# ---------------------------------------------------------------------
# (i) The standby without tx_barrier preloaded: each waiter polls replay
# itself, with the same answers.
{
	$waiter->quit;
	$standby->append_conf('postgresql.conf', "shared_preload_libraries = ''");
	$standby->restart;
	$primary->wait_for_catchup($standby);
	is($standby->safe_psql('postgres', 'SELECT scope FROM barrier_stats()'),
		'session', 'standby restarted without preloading');
	my ($w, $wpid) = txb_session($standby);

	my $run = produce($p1, 9);
	my $tok = produce($p2, 10);
	$primary->wait_for_catchup($standby);
	txb_start_statement($w, wait_any_sql(undef, $run, $tok));
	ok(txb_wait_standby_blocked($standby, $wpid),
		'not preloaded: wait_any on the standby sleeps');
	$p2->query_safe('COMMIT');
	my ($out, $err) = txb_collect($w, limit => 120);
	is($out, "$tok|committed", 'not preloaded: the committed token is answered');
	is($err, '', 'not preloaded: no error');
	is($w->query_safe('SELECT count(*) FROM jobs WHERE id = 10'),
		'1', "not preloaded: the waiter's next query sees the row");

	txb_start_statement($w, wait_any_sql(undef, $run));
	ok(txb_wait_standby_blocked($standby, $wpid),
		'not preloaded: wait_any sleeps before the abort');
	$p1->query_safe('ROLLBACK');
	($out, $err) = txb_collect($w, limit => 120);
	is($out, "$run|aborted", 'not preloaded: the aborted token is answered');

	$tok = produce($p1, 11);
	$primary->wait_for_catchup($standby);
	my $t0 = time;
	$out = $w->query_safe(
		"SELECT count(*) FROM barrier_wait_any(ARRAY['$tok']::xid8[], '200ms')");
	is($out, '0', 'not preloaded: a timed-out wait_any returns no rows');
	cmp_ok(time - $t0, '>=', 0.19, 'not preloaded: the timeout was waited');

	$w->query_safe("SET statement_timeout = '200ms'");
	txb_start_statement($w, wait_any_sql(undef, $tok));
	(undef, $err) = txb_collect($w, limit => 120);
	like(
		$err,
		qr/ERROR:\s+57014: canceling statement due to statement timeout/,
		'not preloaded: statement_timeout ends wait_any with 57014');
	$w->query_safe('RESET statement_timeout');
	$p1->query_safe('COMMIT');
	$w->quit;
}

$p1->quit;
$p2->quit;
$standby->stop;
$primary->stop;
done_testing();
