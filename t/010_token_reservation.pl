# Token reservation (tx_barrier.token_reservation): one WAL record reserves
# a range of xids, tokens inside it need no record of their own, and no
# token handed out under a reservation is ever given to another transaction:
# not after an immediate restart, not after a checkpoint moved the redo
# pointer past the reservation, not after a promotion under synchronous
# replication.  Without the library preloaded the mode is refused, and a
# standby without it refuses the WAL clearly.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use TxbTest;

my $preload = "shared_preload_libraries = 'tx_barrier'\n";
my $reserve = "tx_barrier.token_reservation = on\n";

# A producer session with an open transaction that took a token.
sub open_token
{
	my ($node, $id) = @_;
	my ($s) = txb_session($node);
	my $token = $s->query_safe(
		"BEGIN; INSERT INTO jobs VALUES ($id); SELECT barrier_enqueue();");
	$token =~ s/\s+//g;
	return ($s, $token);
}

sub records
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		'SELECT token_records FROM barrier_stats()');
}

# Every token reads aborted, and the next xid is above all of them.
sub check_lost
{
	my ($node, $what, @tokens) = @_;
	my $next = $node->safe_psql('postgres', 'SELECT pg_current_xact_id()');
	for my $t (@tokens)
	{
		cmp_ok($next, '>', $t, "$what: new xids start above token $t");
		is($node->safe_psql('postgres', "SELECT barrier_status('$t')"),
			'aborted', "$what: token $t reads aborted");
	}
	is($node->safe_psql('postgres', 'SELECT count(*) FROM jobs'),
		'0', "$what: no producer's row is there");
	return;
}

# ---------------------------------------------------------------------
# One reservation covers many tokens; a checkpoint starts a new one; an
# immediate restart hands out none of them again.
my $node = txb_node('resv', conf => $preload . $reserve);
$node->safe_psql('postgres', 'CREATE TABLE jobs (id int)');

my $r0 = records($node);
my @open;
my ($s, $t) = open_token($node, 1);
push @open, [ $s, $t ];
is(records($node), $r0 + 1, 'the first token writes one reservation');
for my $id (2 .. 6)
{
	push @open, [ open_token($node, $id) ];
}
is(records($node), $r0 + 1, 'five more tokens under the mark write nothing');

$node->safe_psql('postgres', 'CHECKPOINT');
push @open, [ open_token($node, 7) ];
is(records($node), $r0 + 2,
	'the first token after a checkpoint writes a new reservation');
push @open, [ open_token($node, 8) ];
is(records($node), $r0 + 2, 'the next one is covered again');

$node->stop('immediate');
$_->[0]->quit for @open;
$node->start;
check_lost($node, 'after an immediate restart', map { $_->[1] } @open);

# A committed token under a reservation still reads committed.
my ($c, $ct) = open_token($node, 9);
$c->query_safe('COMMIT');
is($node->safe_psql('postgres', "SELECT barrier_status('$ct')"),
	'committed', 'a committed token under a reservation reads committed');
$c->quit;
$node->stop;

# ---------------------------------------------------------------------
# Not preloaded: the mode is refused with a clear error.
my $plain = txb_node('resv_plain', conf => $reserve);
my ($ret, $out, $err) = $plain->psql(
	'postgres', 'SELECT barrier_enqueue()',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like(
	$err,
	qr/55000: tx_barrier.token_reservation requires tx_barrier in shared_preload_libraries/,
	'without preloading, barrier_enqueue() refuses reservation mode (55000)');
$plain->stop;

# ---------------------------------------------------------------------
# Promotion under synchronous replication: the standby replays the
# reservation before the token is returned, and after promotion hands out
# none of the xids under it.
my $primary = txb_node(
	'resv_primary',
	allows_streaming => 1,
	conf => $preload . $reserve);
$primary->safe_psql('postgres', 'CREATE TABLE jobs (id int)');
my $standby = txb_standby($primary, 'resv_standby',
	conf => "cluster_name = 'resv_standby'\n");
$primary->append_conf('postgresql.conf',
	"synchronous_standby_names = 'resv_standby'\n");
$primary->reload;
$primary->poll_query_until('postgres',
	"SELECT sync_state = 'sync' FROM pg_stat_replication")
  or die 'the standby never became synchronous';

@open = ([ open_token($primary, 1) ], [ open_token($primary, 2) ]);
$primary->stop('immediate');
$_->[0]->quit for @open;
$standby->promote;
check_lost($standby, 'after promotion', map { $_->[1] } @open);
$standby->stop;

# ---------------------------------------------------------------------
# A standby without the library cannot replay a reservation: it stops
# with the server's own message naming the resource manager.
$primary->start;
$primary->safe_psql('postgres',
	"ALTER SYSTEM SET synchronous_standby_names = ''; SELECT pg_reload_conf()");
my $nolib = txb_standby($primary, 'resv_nolib',
	conf => "shared_preload_libraries = ''\n");
$primary->safe_psql('postgres', 'CHECKPOINT');
my ($n, $nt) = open_token($primary, 3);
$n->query_safe('COMMIT');
$n->quit;
ok( $nolib->wait_for_log(qr/resource manager with ID 150 not registered/),
	'a standby without the library refuses the reservation record');
# Its startup process failed, so the standby shut down rather than go on.
my $pidfile = $nolib->data_dir . '/postmaster.pid';
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
sleep 0.1 while -e $pidfile && time < $deadline;
ok(!-e $pidfile, 'and it stops instead of replaying past it');
$nolib->_update_pid(0);
$primary->stop;

done_testing();
