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
  txb_statement_done
  txb_collect
  txb_collect_exit
  txb_wait_blocked
  txb_standby
  txb_wait_standby_blocked
  txb_standby_wait_event
  txb_wait_any_blocked
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
# With connstr => CONNINFO it connects there instead of to $node (e.g.
# through a connection pooler, where the pid is that of the server
# connection that happened to run the query).
sub txb_session
{
	my ($node, %opts) = @_;
	my @extra = ('-v', 'VERBOSITY=verbose');
	# psql takes the last -d given, so this overrides the node's own.
	push @extra, '-d', $opts{connstr} if defined $opts{connstr};
	my $s = $node->background_psql(
		'postgres',
		on_error_stop => 0,
		extra_params => \@extra);
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	return ($s, $pid);
}

# Sends $sql to the session without waiting for it to complete.  A marker
# line is echoed after it on stdout and on stderr, so that txb_collect can
# tell when it has finished and has all of its output, errors included.
sub txb_start_statement
{
	my ($s, $sql) = @_;
	$s->{txb_mark} = ($s->{txb_mark} // 0) + 1;
	my $mark = "txb-done-$s->{txb_mark}";
	$s->{stdout} = '';
	$s->{stderr} = '';
	$s->{stdin} .= "$sql\n;\n\\echo $mark\n\\warn $mark\n";
	$s->{run}->pump_nb;
	return;
}

# How many of the two end markers of the last txb_start_statement have
# arrived (0, 1 or 2).
sub txb_marks_seen
{
	my ($s) = @_;
	my $mark = qr/^\Qtxb-done-$s->{txb_mark}\E\r?\n/m;
	return ($s->{stdout} =~ $mark ? 1 : 0) + ($s->{stderr} =~ $mark ? 1 : 0);
}

# Without blocking: has the statement sent by txb_start_statement ended?
# True as soon as either marker is back, so that "still running" is the
# strict claim: ok(!txb_statement_done($s), ...).
sub txb_statement_done
{
	my ($s) = @_;
	eval { $s->{run}->pump_nb; };
	return txb_marks_seen($s) > 0 ? 1 : 0;
}

# Waits until the statement sent by txb_start_statement has finished and
# returns (stdout, stderr) without the markers (and without the newline
# before them).  Waits at most "limit => SECONDS" (default: the test
# suite's timeout); returns undef stdout if the statement did not finish
# by then or psql exited first (connection lost).
sub txb_collect
{
	my ($s, %opts) = @_;
	my $mark = "txb-done-$s->{txb_mark}";
	my $deadline = Time::HiRes::time()
	  + ($opts{limit} // $PostgreSQL::Test::Utils::timeout_default);
	my $ok = 1;
	until (txb_marks_seen($s) == 2)
	{
		if (Time::HiRes::time() > $deadline || !eval { $s->{run}->pumpable })
		{
			$ok = 0;
			last;
		}
		eval { $s->{run}->pump_nb; };
		# Pumped output is read at once; this only paces the polling.
		Time::HiRes::sleep(0.001) unless txb_marks_seen($s) == 2;
	}
	my $out = $s->{stdout};
	my $err = $s->{stderr};
	$s->{stdout} = '';
	$s->{stderr} = '';
	$err =~ s/\r?\n?^\Q$mark\E\r?\n//m;
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

# Polls until backend $pid of a primary sleeps in barrier_wait_any() on
# @tokens (xid8 values): active with this major's wait event, and listed in
# barrier_waiters() once for each of them (needs tx_barrier preloaded).
sub txb_wait_any_blocked
{
	my ($node, $pid, @tokens) = @_;
	my $event = $node->pg_version->major >= 17 ? 'TxBarrierWaitAny' : 'Extension';
	my $list = join(', ', map { "'$_'" } @tokens);
	my $n = scalar(@tokens);
	return $node->poll_query_until(
		'postgres', qq{
		SELECT EXISTS (
			SELECT 1 FROM pg_stat_activity
			WHERE pid = $pid AND state = 'active'
			  AND wait_event_type = 'Extension' AND wait_event = '$event')
		   AND (SELECT count(DISTINCT token) FROM barrier_waiters()
				WHERE pid = $pid AND token IN ($list)) = $n});
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
