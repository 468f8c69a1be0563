# Deadline-edge stress: thousands of waits whose timeouts run out within
# about a millisecond of their producers' COMMIT or ROLLBACK, from several
# producer/waiter pairs at once (t/edge_driver.c), with barrier_wait(),
# barrier_wait_all() and waits on a hot standby.  Every wait must answer
# (no error: a timed-out wait answers "in progress", never 57014), and
# every answer must agree with the rows its producer left behind.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TxbTest;

# The driver links the system's libpq (any libpq speaks to any server;
# one built with the server under test may carry sanitizer runtimes).
my $driver = "${PostgreSQL::Test::Utils::tmp_check}/edge_driver";
my $libpq = `pkg-config --cflags --libs libpq 2>/dev/null`;
chomp $libpq;
if ($libpq eq '')
{
	my $inc = `pg_config --includedir`;
	my $lib = `pg_config --libdir`;
	chomp($inc, $lib);
	$libpq = "-I$inc -L$lib -Wl,-rpath,$lib -lpq";
}
system("${\($ENV{CC} // 'cc')} -O1 -o $driver $FindBin::RealBin/edge_driver.c $libpq") == 0
  or BAIL_OUT('cannot compile t/edge_driver.c');

my $primary = txb_node(
	'edge_primary',
	allows_streaming => 1,
	conf => "max_connections = 40\nshared_preload_libraries = 'tx_barrier'\n");
$primary->safe_psql('postgres',
	'CREATE TABLE edge_rows (token xid8 PRIMARY KEY)');
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('edge_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

my $seed = $ENV{TXB_EDGE_SEED} // time;
note "seed $seed (set TXB_EDGE_SEED to repeat)";

# Runs the driver; returns its output lines split into fields.
sub run_driver
{
	my ($waiter_node, $mode, $rounds, $slots) = @_;
	my $connstr = sub {
		my ($n) = @_;
		return 'host=' . $n->host . ' port=' . $n->port . ' dbname=postgres';
	};
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(
		[
			$driver, $connstr->($primary), $connstr->($waiter_node),
			$mode, $rounds, $slots, $seed++
		],
		'>', \$out, '2>', \$err);
	ok($ok, "$mode-token driver ran its $rounds rounds") or diag($err);
	return map { [ split /\t/ ] } split /\n/, $out;
}

# Both sides of the edge, at least this many times each.
my $edge_min = 50;

# Runs the driver until both sides of the edge were hit often enough (a
# loaded machine shifts how many waits end each way, so the runs go on until
# the condition holds rather than counting what one run happened to give),
# at most 10 runs; then checks every answer against the rows on the primary.
sub edge_check
{
	my ($label, $waiter_node, $mode, $rounds) = @_;
	my @lines;
	for my $run (1 .. 10)
	{
		push @lines, run_driver($waiter_node, $mode, $rounds, 4);
		my ($decided, $timed_out) = (0, 0);
		for my $l (@lines)
		{
			$decided++ if $l->[2] eq 'committed' || $l->[2] eq 'aborted';
			$timed_out++ if $l->[2] eq 'in progress';
		}
		last if $decided >= $edge_min && $timed_out >= $edge_min;
	}
	$primary->wait_for_catchup($waiter_node) if $waiter_node != $primary;
	check_answers($label, $primary, @lines);
	return;
}

# Checks the answers against the rows on the primary.
sub check_answers
{
	my ($label, $rows_node, @lines) = @_;
	my %present = map { $_ => 1 } split /\n/,
	  $rows_node->safe_psql('postgres', 'SELECT token FROM edge_rows');
	my (%count, @errors, @wrong);
	for my $l (@lines)
	{
		my ($token, $end, $answer, $visible, $sqlstate, $offset) = @$l;
		if ($sqlstate ne '\N')
		{
			push @errors, "$sqlstate at ${offset} us";
			next;
		}
		$count{$answer}++;
		if ($answer eq 'committed')
		{
			push @wrong, "$token committed: end $end, row present "
			  . ($present{$token} ? 1 : 0) . ", visible $visible"
			  unless $end eq 'commit' && $present{$token} && $visible == 1;
		}
		elsif ($answer eq 'aborted')
		{
			push @wrong, "$token aborted: end $end, row present"
			  unless $end eq 'rollback' && !$present{$token};
		}
		elsif ($answer ne 'in progress')
		{
			push @wrong, "$token answered '$answer'";
		}
	}
	my $decided = ($count{committed} // 0) + ($count{aborted} // 0);
	my $timed_out = $count{'in progress'} // 0;
	note "$label: $decided decided, $timed_out timed out, "
	  . scalar(@errors) . " errors";
	is(scalar(@errors), 0, "$label: no wait raised an error")
	  or diag(join("\n", @errors[ 0 .. ($#errors < 9 ? $#errors : 9) ]));
	is(scalar(@wrong), 0, "$label: every answer agrees with the rows")
	  or diag(join("\n", @wrong[ 0 .. ($#wrong < 9 ? $#wrong : 9) ]));
	# Both sides of the edge were hit: the races were real.
	cmp_ok($decided, '>=', $edge_min, "$label: waits saw the end ($decided)");
	cmp_ok($timed_out, '>=', $edge_min, "$label: waits timed out ($timed_out)");
	return;
}

edge_check('barrier_wait', $primary, 'one', 3000);
edge_check('barrier_wait_all', $primary, 'all', 1500);

# On the standby the race is against replay; "committed" must also mean
# the row is visible there at once.  Rows are judged on the primary.
edge_check('standby barrier_wait', $standby, 'one', 1500);

$standby->stop;
$primary->stop;
done_testing();
