# A token handed out by a transaction that is then lost in a crash must
# never name another transaction after the restart.
#
# Recovery restarts the xid counter from the last checkpoint, advanced past
# the xid of every replayed WAL record.  A transaction that wrote nothing
# to WAL before the crash leaves no trace, so its xid would be handed out
# again.  barrier_enqueue() therefore writes (and flushes, as a commit
# would be) an XLOG_NOOP record carrying the xid.  These tests crash the
# server with the token's transaction open, run enough new transactions to
# reuse the number, and check that the token reads 'aborted'.  A control
# case with tx_barrier.durable_tokens = off shows the hazard is real, so
# the test would catch a token that is not durable.
#
# wal_level is replica, as in production (allows_streaming; the Cluster
# default would be minimal): under logical, assignment records could carry
# the xid and hide the hazard.  Autovacuum is off: the
# test counts on nothing else assigning xids.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TxbTest;

# More new transactions than xids could possibly have been handed out
# without WAL between the last durable record and the token.
my $N = 30;

my $node = txb_node('crash', allows_streaming => 1);
is($node->safe_psql('postgres', 'SHOW wal_level'),
	'replica', 'wal_level is replica');

# WAL records from $lsn to the end of WAL, as pg_waldump prints them (the
# server must be stopped, so that the end of WAL is final).
sub waldump_from
{
	my ($lsn) = @_;
	my ($out, $err) = run_command(
		[ 'pg_waldump', '-p', $node->data_dir . '/pg_wal', '-s', $lsn ]);
	return $out;
}

# Records in a pg_waldump listing whose header carries $token's xid.
sub records_with_xid
{
	my ($dump, $token) = @_;
	my $xid = $token % 4294967296;
	return grep { /\btx:\s+$xid,/ } split /\n/, $dump;
}

# $N autocommit transactions that each take an xid; returns the xids.
sub new_xids
{
	my $out = $node->safe_psql('postgres',
		join('', ("SELECT pg_current_xact_id();\n") x $N));
	return split /\n/, $out;
}

# Opens a session, runs @setup in it, then BEGIN and $enqueue_sql (which
# must return the token).  Returns (session, token, lsn before BEGIN).
sub open_barrier_xact
{
	my ($enqueue_sql, @setup) = @_;
	my ($s) = txb_session($node);
	$s->query_safe($_) for @setup;
	my $lsn = $s->query_safe('SELECT pg_current_wal_insert_lsn()');

	# Transactions that wrote nothing but their commit record commit
	# asynchronously whatever synchronous_commit says, so the earlier
	# parts' xids may still sit in WAL buffers.  Wait for them to be on
	# disk: then no xid below the token can be lost in the crash, and the
	# control case knows exactly which number is handed out next.
	ok( $node->poll_query_until(
			'postgres', "SELECT pg_current_wal_flush_lsn() >= '$lsn'"),
		'WAL before the barrier transaction is flushed');

	$s->query_safe('BEGIN');
	my $token = $s->query_safe($enqueue_sql);
	like($token, qr/^\d+$/, 'barrier_enqueue() returned a token');
	return ($s, $token, $lsn);
}

sub crash
{
	my ($s) = @_;
	$node->stop('immediate');
	# psql is left with a dead connection; it exits at \q.
	eval { $s->quit; };
	return;
}

# After the restart, a lost token reads aborted, does not block, is below
# the next xid, and is not handed out again.
sub check_lost_token_aborted
{
	my ($token, $what) = @_;
	is($node->safe_psql('postgres', "SELECT barrier_status('$token')"),
		'aborted', "$what: barrier_status reads aborted after the restart");
	is($node->safe_psql('postgres', "SELECT barrier_wait('$token')"),
		'aborted', "$what: barrier_wait returns aborted after the restart");
	is( $node->safe_psql(
			'postgres', "SELECT '$token'::xid8 < pg_current_xact_id()"),
		't',
		"$what: the token is below the next xid after the restart");

	my @new = new_xids();
	is(scalar(grep { $_ eq $token } @new),
		0, "$what: none of $N new transactions reuses the token ($token)");
	ok((grep { $_ <= $token } @new) == 0,
		"$what: every new transaction's xid is above the token");
	is($node->safe_psql('postgres', "SELECT barrier_status('$token')"),
		'aborted', "$what: still aborted after $N new transactions");
	return;
}

#
# 1. A durable token, in a transaction that wrote nothing else.
#
{
	my ($s, $token, $lsn) = open_barrier_xact('SELECT barrier_enqueue()');
	crash($s);

	my @recs = records_with_xid(waldump_from($lsn), $token);
	ok((grep { /desc: NOOP/ } @recs) == 1,
		"durable: WAL holds one NOOP record carrying the token's xid")
	  or diag(join("\n", @recs));

	$node->start;
	check_lost_token_aborted($token, 'durable');
}

#
# 2. Control: with tx_barrier.durable_tokens = off the same transaction
#    leaves nothing in WAL, and after the crash its number is handed out
#    again to a new transaction, which commits.  This is the hazard the
#    record prevents; if this part fails, the test above proves nothing.
#
{
	my ($s, $token, $lsn) =
	  open_barrier_xact('SELECT barrier_enqueue()',
		'SET tx_barrier.durable_tokens = off');
	crash($s);

	my @recs = records_with_xid(waldump_from($lsn), $token);
	is(scalar(@recs), 0,
		'control: no WAL record carries the token\'s xid before the crash')
	  or diag(join("\n", @recs));

	$node->start;
	my ($ret, $out, $err) =
	  $node->psql('postgres', "SELECT barrier_status('$token')");
	like($err, qr/is in the future/,
		'control: right after the restart the token names no transaction yet'
	);

	my @new = new_xids();
	is(scalar(grep { $_ eq $token } @new),
		1, "control: a new transaction was given the token's number ($token)");
	is($node->safe_psql('postgres', "SELECT barrier_status('$token')"),
		'committed',
		'control: the stale token now reads the new transaction\'s commit');
}

#
# 3. A token from a subtransaction.  Its xid is above its top level's, so
#    the record must carry the subtransaction's xid, not only the parent's.
#
{
	my ($s, $token, $lsn) =
	  open_barrier_xact('SAVEPOINT s; SELECT barrier_enqueue()');
	my $top = $s->query_safe('SELECT pg_current_xact_id()');
	cmp_ok($top, '<', $token,
		'savepoint: the token is the subtransaction\'s xid, above its parent\'s'
	);
	crash($s);
	$node->start;
	check_lost_token_aborted($token, 'savepoint');
	is($node->safe_psql('postgres', "SELECT barrier_status('$top')"),
		'aborted', 'savepoint: the top-level transaction reads aborted too');
}

#
# 4. A durable token whose parent's savepoint had already been released:
#    a second subtransaction's token is made durable on its own.
#
{
	my ($s, $first, $lsn) = open_barrier_xact('SELECT barrier_enqueue()');
	my $token = $s->query_safe(
		'SAVEPOINT a; RELEASE a; SAVEPOINT b; SELECT barrier_enqueue()');
	cmp_ok($token, '>', $first,
		'second subtransaction: a new token above the first');
	crash($s);
	$node->start;
	check_lost_token_aborted($token, 'second subtransaction');
	is($node->safe_psql('postgres', "SELECT barrier_status('$first')"),
		'aborted', 'second subtransaction: the first token reads aborted');
}

#
# 5. synchronous_commit = off: the record is not flushed by
#    barrier_enqueue(); like an asynchronous commit it reaches disk when
#    the WAL writer flushes (within wal_writer_delay).  A crash before
#    that flush has the same exposure as an asynchronous commit.  Once
#    the flush location has passed the record, the token survives a crash
#    as aborted.
#
{
	my ($s, $token) =
	  open_barrier_xact('SELECT barrier_enqueue()',
		'SET synchronous_commit = off');
	my $end = $s->query_safe('SELECT pg_current_wal_insert_lsn()');
	ok( $node->poll_query_until(
			'postgres', "SELECT pg_current_wal_flush_lsn() >= '$end'"),
		'synchronous_commit=off: the WAL writer flushed the token record');
	crash($s);
	$node->start;
	check_lost_token_aborted($token, 'synchronous_commit=off');
}

$node->stop;
done_testing();
