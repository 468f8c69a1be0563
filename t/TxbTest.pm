# Helpers shared by the tx_barrier TAP tests.
#
#   use FindBin;
#   use lib $FindBin::RealBin;
#   use TxbTest;
#
# Sessions are PostgreSQL::Test::BackgroundPsql objects.  A "waiter" is a
# session whose statement is sent without waiting for it to finish; the
# test then proves the statement is blocked (by pg_locks and
# pg_stat_activity, never by sleeping), acts, and collects the output.

package TxbTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

our @EXPORT = qw(
  txb_node
  txb_session
  txb_start_statement
  txb_collect
  txb_collect_exit
  txb_wait_blocked
  txb_standby
  txb_wait_standby_blocked
  txb_standby_wait_event
  txb_pid_gone
  txb_elapsed
);

# A started node with the extension created in database postgres.
# Extra postgresql.conf lines are appended before the first start.
# Autovacuum is off so that nothing but the test assigns xids.
sub txb_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => $opts{allows_streaming} // 0);
	$node->append_conf('postgresql.conf', "autovacuum = off\n");
	$node->append_conf('postgresql.conf', $opts{conf}) if $opts{conf};
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION tx_barrier');
	return $node;
}

# A background psql session that does not stop at the first error and
# prints SQLSTATEs (VERBOSITY verbose).  Returns ($session, $backend_pid).
sub txb_session
{
	my ($node) = @_;
	my $s = $node->background_psql(
		'postgres',
		on_error_stop => 0,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	return ($s, $pid);
}

# Sends $sql to the session without waiting for it to complete.  A marker
# line is echoed after it, so txb_collect can tell when it has finished.
sub txb_start_statement
{
	my ($s, $sql) = @_;
	$s->{txb_mark} = ($s->{txb_mark} // 0) + 1;
	$s->{stdout} = '';
	$s->{stderr} = '';
	$s->{stdin} .= "$sql\n;\n\\echo txb-done-$s->{txb_mark}\n";
	$s->{run}->pump_nb;
	return;
}

# Waits until the statement sent by txb_start_statement has finished and
# returns (stdout, stderr) without the marker.  Returns undef stdout if
# psql exited first (connection lost).
sub txb_collect
{
	my ($s) = @_;
	my $mark = "txb-done-$s->{txb_mark}";
	my $ok = pump_until($s->{run}, $s->{timeout}, \$s->{stdout},
		qr/^\Q$mark\E\r?\n/m);
	my $out = $s->{stdout};
	my $err = $s->{stderr};
	$s->{stdout} = '';
	$s->{stderr} = '';
	return (undef, $err) unless $ok;
	$out =~ s/\r?\n?^\Q$mark\E\r?\n//m;
	return ($out, $err);
}

# For a session whose server connection is expected to be gone: waits for
# psql to exit and returns its stderr.  psql notices at once when it was
# waiting for a statement; an idle psql (idle => 1) notices only when it
# sends its next command, so one is sent.
sub txb_collect_exit
{
	my ($s, %opts) = @_;
	$s->{stdin} .= "SELECT 1;\n" if $opts{idle};
	eval {
		$s->{run}->pump
		  while $s->{run}->pumpable && !$s->{timeout}->is_expired;
	};
	eval { $s->{run}->finish; };
	return $s->{stderr};
}

# Polls until backend $pid is blocked on the xid lock of one of @tokens
# (xid8 values), in pg_locks and in pg_stat_activity.
sub txb_wait_blocked
{
	my ($node, $pid, @tokens) = @_;
	my $xids = join(', ', map { "xid('$_'::xid8)" } @tokens);
	return $node->poll_query_until(
		'postgres', qq{
		SELECT EXISTS (
			SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
			WHERE l.pid = $pid AND l.locktype = 'transactionid'
			  AND NOT l.granted AND l.transactionid IN ($xids)
			  AND a.wait_event_type = 'Lock'
			  AND a.wait_event = 'transactionid')});
}

# A streaming hot standby of $primary (started with allows_streaming),
# from a new base backup, started and caught up.  Extra postgresql.conf
# lines go in before the first start.
sub txb_standby
{
	my ($primary, $name, %opts) = @_;
	my $backup = "${name}_base";
	$primary->backup($backup);
	my $standby = PostgreSQL::Test::Cluster->new($name);
	$standby->init_from_backup($primary, $backup, has_streaming => 1);
	$standby->append_conf('postgresql.conf', $opts{conf}) if $opts{conf};
	$standby->start;
	$primary->wait_for_catchup($standby);
	return $standby;
}

# The wait_event_type/wait_event a standby waiter shows while it sleeps,
# by major: the generic "Extension" before 17, the extension's own
# "TxBarrierStandbyWait" from 17, and from 19, where the startup process
# wakes it, core's "WaitForWalReplay".
sub txb_standby_wait_event
{
	my ($node) = @_;
	# major(): a beta of 19 compares below 19 itself.
	my $major = $node->pg_version->major;
	return 'IPC/WaitForWalReplay' if $major >= 19;
	return 'Extension/TxBarrierStandbyWait' if $major >= 17;
	return 'Extension/Extension';
}

# Polls until backend $pid of a hot standby sleeps in barrier_wait's
# standby wait, showing this major's wait event.
sub txb_wait_standby_blocked
{
	my ($standby, $pid) = @_;
	my $event = txb_standby_wait_event($standby);
	return $standby->poll_query_until(
		'postgres', qq{
		SELECT state = 'active'
		   AND wait_event_type || '/' || wait_event = '$event'
		  FROM pg_stat_activity WHERE pid = $pid});
}

# Polls until no backend has process id $pid any more.
sub txb_pid_gone
{
	my ($node, $pid) = @_;
	return $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid");
}

# Runs $code and returns its seconds of wall-clock time.
sub txb_elapsed
{
	my ($code) = @_;
	my $t0 = [Time::HiRes::gettimeofday()];
	$code->();
	return Time::HiRes::tv_interval($t0);
}

1;
