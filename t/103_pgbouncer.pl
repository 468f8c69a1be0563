# barrier_wait through a real PgBouncer in transaction pooling mode.
#
# Producers enqueue barriers and commit or roll back through the pooler;
# workers wait through it, with five times more clients than server
# connections.  Every answer must match what the producer did, the worker's
# next statement (possibly on another server connection) must see exactly
# the committed rows, and afterwards no server connection may be left in a
# barrier wait.  Also: a waiting client occupies a server connection for as
# long as it waits; PgBouncer rejects the "options" startup parameter, and
# SET LOCAL inside a transaction is the way to set a timeout instead; a
# client that goes away in the middle of a wait does not leave the server
# waiting when client_connection_check_interval is set.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use TxbTest;

# tools/deps.sh installs it: a missing PgBouncer is a failure, not a skip.
my $pgbouncer = '/usr/sbin/pgbouncer';
BAIL_OUT("$pgbouncer is not installed (tools/deps.sh installs it)")
  unless -x $pgbouncer;

my $n_producers = 20;
my $n_waiters = 20;
my $jobs_per_producer = 10;
my $pool_size = 4;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf(
	'postgresql.conf', qq(
max_connections = 40
shared_preload_libraries = 'tx_barrier'
client_connection_check_interval = '200ms'
log_statement = none
));
$node->start;
$node->safe_psql('postgres',
	'CREATE EXTENSION tx_barrier; CREATE TABLE jobs (id int PRIMARY KEY, producer int)');

# ---------------------------------------------------------------------
# PgBouncer: one pool for the producers (the application), one for the
# workers, each $pool_size server connections, transaction pooling.
my $dir = PostgreSQL::Test::Utils::tempdir;
my $bport = PostgreSQL::Test::Cluster::get_free_port();
my $host = $node->host;
my $port = $node->port;
PostgreSQL::Test::Utils::append_to_file("$dir/userlist.txt", qq("postgres" ""\n));
PostgreSQL::Test::Utils::append_to_file(
	"$dir/pgbouncer.ini", qq(
[databases]
app = host=$host port=$port dbname=postgres pool_size=$pool_size
worker = host=$host port=$port dbname=postgres pool_size=$pool_size

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = postgres
pool_mode = transaction
max_client_conn = 100
default_pool_size = $pool_size
query_wait_timeout = 60
server_check_delay = 0
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
));

my $bouncer = IPC::Run::start([ $pgbouncer, "$dir/pgbouncer.ini" ],
	'<', \undef, '>', "$dir/pgbouncer.out", '2>&1');
END { $bouncer->kill_kill if $bouncer && $bouncer->pumpable; }

# libpq from 19 on opens with a made-up protocol version (3.9999, "grease")
# to keep servers and poolers honest about negotiation; PgBouncer releases
# that predate negotiation (Debian 12's 1.18) reject it.  Ask for 3.0, as
# an application behind such a pooler must (the option exists from 18).
my $protocol = $node->pg_version->major >= 18 ? ' max_protocol_version=3.0' : '';

sub conninfo
{
	my ($db) = @_;
	return "host=127.0.0.1 port=$bport dbname=$db user=postgres$protocol";
}

# Runs one psql command through the pooler; returns (exit ok, stdout, stderr).
sub bouncer_psql
{
	my ($db, $sql, %env) = @_;
	my ($out, $err) = ('', '');
	local %ENV = (%ENV, %env);
	my $ok = IPC::Run::run(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', conninfo($db), '-c', $sql ],
		'<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout(60));
	chomp $out;
	return ($ok, $out, $err);
}

my $deadline = time + 30;
until ((bouncer_psql('pgbouncer', 'SHOW VERSION'))[0])
{
	die "pgbouncer did not start: " . slurp_file("$dir/pgbouncer.out")
	  if time > $deadline;
	usleep(50_000);
}
pass('pgbouncer runs in transaction pooling mode');

# Admin console: pool lines keyed by database name.
sub show_pools
{
	my ($ok, $out) = bouncer_psql('pgbouncer', 'SHOW POOLS');
	my %pools;
	for my $line (split /\n/, $out)
	{
		my @f = split /\|/, $line;
		# database|user|cl_active|cl_waiting|cl_active_cancel_req|
		# cl_waiting_cancel_req|sv_active|...
		$pools{ $f[0] } = { cl_active => $f[2], cl_waiting => $f[3], sv_active => $f[6] };
	}
	return \%pools;
}

# A psql client through the pooler whose input the test feeds line by line
# and whose output it parses as it comes (many statements in flight).
sub start_client
{
	my ($db) = @_;
	my %c = (in => '', out => '', err => '');
	$c{h} = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', conninfo($db) ],
		'<', \$c{in}, '>', \$c{out}, '2>', \$c{err},
		IPC::Run::timeout(120));
	return \%c;
}

# ---------------------------------------------------------------------
# Producers and workers.  A producer publishes each token (prints it) while
# its transaction is still open, then commits, rolls back, or rolls back
# the savepoint the token was taken in.  The test is the broker: it hands
# each token to a worker as soon as it appears.
my %expect;
my @producers;
for my $p (1 .. $n_producers)
{
	my $script = '';
	for my $k (1 .. $jobs_per_producer)
	{
		my $id = $p * 1000 + $k;
		my $kind = $id % 5 == 0 ? 'savepoint' : $id % 3 == 0 ? 'rollback' : 'commit';
		$expect{$id} = $kind eq 'commit' ? 'committed' : 'aborted';
		$script .= "BEGIN;\n";
		$script .= "SAVEPOINT s;\n" if $kind eq 'savepoint';
		$script .= "INSERT INTO jobs VALUES ($id, $p);\n";
		$script .= "SELECT 'T', $id, barrier_enqueue();\n";
		# Work after publishing, before the end of the transaction.
		$script .= "SELECT count(*) FROM pg_sleep(0.02 + random() * 0.03);\n";
		$script .= "ROLLBACK TO SAVEPOINT s;\nCOMMIT;\n" if $kind eq 'savepoint';
		$script .= "ROLLBACK;\n" if $kind eq 'rollback';
		$script .= "COMMIT;\n" if $kind eq 'commit';
	}
	$script .= "\\q\n";
	my $c = start_client('app');
	$c->{in} = "\\set ON_ERROR_STOP 1\n" . $script;
	push @producers, $c;
}

my @waiters = map { start_client('worker') } 1 .. $n_waiters;
my (%answer, %seen_rows, %dispatched);
my ($next_waiter, $max_servers, $blocked_waits) = (0, 0, 0);
my $last_sample = 0;
$deadline = time + 90;
my $total = scalar keys %expect;

while (keys %seen_rows < $total && time < $deadline)
{
	for my $c (@producers)
	{
		$c->{h}->pump_nb if $c->{h}->pumpable;
		while ($c->{out} =~ s/^T\|(\d+)\|(\d+)\n//m)
		{
			my ($id, $token) = ($1, $2);
			my $w = $waiters[ $next_waiter++ % @waiters ];
			# The status first, then the wait: shows whether it had to wait.
			$w->{in} .= "SELECT 'W', $id, barrier_status('$token'), barrier_wait('$token', '30s');\n"
			  . "SELECT 'V', $id, count(*) FROM jobs WHERE id = $id;\n";
			$dispatched{$id} = 1;
		}
		$c->{out} =~ s/^\d+\n//mg;    # the pg_sleep counts
	}
	for my $w (@waiters)
	{
		$w->{h}->pump_nb;
		while ($w->{out} =~ s/^W\|(\d+)\|(.*)\|(.*)\n//m)
		{
			$answer{$1} = $3;
			$blocked_waits++ if $2 eq 'in progress';
		}
		$seen_rows{$1} = $2 while $w->{out} =~ s/^V\|(\d+)\|(\d+)\n//m;
	}
	if (time - $last_sample > 0.1)
	{
		$last_sample = time;
		my $servers = $node->safe_psql('postgres',
			"SELECT count(*) FROM pg_stat_activity "
			  . "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()");
		$max_servers = $servers if $servers > $max_servers;
	}
	usleep(1000);
}

is(scalar(keys %dispatched), $total, "all $total tokens were published through the pooler");
is(scalar(keys %answer), $total, "every token got an answer through the pooler");
my @wrong = grep { ($answer{$_} // 'none') ne $expect{$_} } sort keys %expect;
is(scalar(@wrong), 0, 'every answer matches what the producer did')
  or diag(join(', ', map { "$_: expected $expect{$_}, got " . ($answer{$_} // 'none') } @wrong[0 .. ($#wrong < 9 ? $#wrong : 9)]));
my @bad_rows = grep {
	($seen_rows{$_} // -1) != ($expect{$_} eq 'committed' ? 1 : 0)
} sort keys %expect;
is(scalar(@bad_rows), 0,
	"the worker's next statement sees the row exactly when the answer is committed");
# How many of these waits found their transaction still open depends on the
# machine's speed: reported, not asserted.  That a wait through the pooler
# blocks, and what it answers then, is proven below with the producer held
# open until its waiters show.
note("$blocked_waits of $total waits found their transaction open");
cmp_ok($max_servers, '<=', 2 * $pool_size,
	"never more than the pools' $pool_size + $pool_size server connections (saw $max_servers)");
my @errors = grep { $_->{err} ne '' } @producers, @waiters;
is(scalar(@errors), 0, 'no client saw an error')
  or diag(join("\n", map { $_->{err} } @errors));

for my $c (@producers)
{
	$c->{h}->finish;
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM jobs'),
	scalar(grep { $_ eq 'committed' } values %expect),
	'exactly the committed rows exist');

# Nothing is left waiting or in a transaction on the server.
ok( $node->poll_query_until('postgres',
		    "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
		  . "AND backend_type = 'client backend' "
		  . "AND (state <> 'idle' OR wait_event_type = 'Lock')"),
	'no server connection is left active or waiting');
is($node->safe_psql('postgres', 'SELECT count(*) FROM barrier_waiters()'),
	'0', 'barrier_waiters() is empty afterwards');
my $pools = show_pools();
is($pools->{worker}{cl_waiting}, 0, 'pgbouncer: no worker client queued');
is($pools->{worker}{sv_active}, 0, 'pgbouncer: no worker server connection busy');
is($pools->{app}{sv_active}, 0, 'pgbouncer: no app server connection busy');
my $stats = $node->safe_psql('postgres',
	'SELECT enqueued, waits_committed, waits_aborted, waits_timed_out FROM barrier_stats()');
my ($enq, $wc, $wa, $wt) = split /\|/, $stats;
is($enq, $total, 'barrier_stats: every enqueue counted');
is($wc + $wa, $total, 'barrier_stats: every wait counted by outcome');
is($wt, 0, 'barrier_stats: no wait timed out');

# A TxbTest session through the pooler, one statement at a time.
sub pooled_session
{
	my ($db) = @_;
	my ($s) = txb_session($node, connstr => conninfo($db));
	return $s;
}

# An open transaction through the 'app' pool; returns the session and the
# token it published.
sub open_producer
{
	my ($id) = @_;
	my $producer = pooled_session('app');
	txb_start_statement($producer,
		"BEGIN; INSERT INTO jobs VALUES ($id, 0); SELECT 'T', barrier_enqueue()");
	my ($out) = txb_collect($producer, limit => 30);
	my ($token) = ($out // '') =~ /^T\|(\d+)$/m;
	return ($producer, $token);
}

# ---------------------------------------------------------------------
# A blocked wait holds its server connection: with more waiters than the
# pool has connections, the rest queue in PgBouncer.
{
	my ($producer, $token) = open_producer(1);
	ok(defined $token, 'open producer transaction published a token');

	my @blocked = map { pooled_session('worker') } 1 .. $pool_size + 2;
	txb_start_statement($_, "SELECT 'W', barrier_wait('$token', '60s')")
	  for @blocked;
	# Until every server connection's backend sleeps on the token's xid
	# lock and the rest of the clients queue (a guard against a hang, not a
	# time the machine must meet).
	$deadline = time + 180;
	my ($p, $sleeping);
	do
	{
		txb_statement_done($_) for @blocked;    # pumps their input through
		$p = show_pools();
		$sleeping = $node->safe_psql('postgres',
			"SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' "
			  . "AND NOT granted AND transactionid = xid('$token'::xid8)");
	  } until ($p->{worker}{sv_active} == $pool_size
		  && $p->{worker}{cl_waiting} == 2
		  && $sleeping == $pool_size)
	  || time > $deadline;
	is($sleeping, $pool_size,
		'a wait through the pooler blocks on the open transaction (pg_locks)');
	is($p->{worker}{sv_active}, $pool_size,
		'each waiting client occupies a server connection');
	is($node->safe_psql('postgres', "SELECT count(*) FROM barrier_waiters() WHERE token = '$token'"),
		$pool_size, 'barrier_waiters() shows one entry per server connection waiting');
	is($p->{worker}{cl_waiting}, 2, 'waiters beyond the pool size queue in pgbouncer');

	$producer->query_safe('COMMIT');
	$producer->quit;
	my @answers = map { (txb_collect($_, limit => 60))[0] // '' } @blocked;
	is(scalar(grep { /^W\|committed$/m } @answers),
		$pool_size + 2, 'queued waiters get their turn and answer committed');
	$_->quit for @blocked;
}

# ---------------------------------------------------------------------
# PgBouncer rejects the "options" startup parameter (PGOPTIONS); a timeout
# set with SET LOCAL inside the transaction works instead.
{
	my ($ok, $out, $err) = bouncer_psql('worker', 'SHOW statement_timeout',
		PGOPTIONS => '-c statement_timeout=1s');
	ok(!$ok, 'PGOPTIONS through pgbouncer: connection refused');
	like($err, qr/unsupported startup parameter: options/,
		'pgbouncer names the unsupported "options" parameter');

	my ($producer, $token) = open_producer(2);

	($ok, $out, $err) = bouncer_psql('worker',
		"BEGIN; SET LOCAL statement_timeout = '300ms'; SELECT barrier_wait('$token'); COMMIT;");
	ok(!$ok, 'SET LOCAL statement_timeout ends a wait through the pooler');
	like($err, qr/canceling statement due to statement timeout/,
		'the error is the statement timeout');
	is((bouncer_psql('worker', 'SHOW statement_timeout'))[1], '0',
		'SET LOCAL did not leak into the pooled server connection');
	is((bouncer_psql('worker', "SELECT barrier_wait('$token', '100ms')"))[1],
		'in progress', 'the timeout argument needs no session state at all');

	# A client that disappears in the middle of a wait: PgBouncer closes
	# the server connection, and client_connection_check_interval lets the
	# backend notice although it is asleep on a lock.
	my $gone = pooled_session('worker');
	txb_start_statement($gone, "SELECT barrier_wait('$token')");
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM pg_stat_activity WHERE query ~ '^SELECT barrier_wait' AND wait_event = 'transactionid'"
		),
		'abandoned waiter is waiting');
	$gone->{run}->kill_kill;
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM pg_stat_activity WHERE query ~ '^SELECT barrier_wait' AND state = 'active'"
		),
		'its backend stops waiting although the producer is still open');

	$producer->query_safe('ROLLBACK');
	$producer->quit;
}

$_->{in} .= "\\q\n", $_->{h}->finish for @waiters;
my $final = show_pools();
is($final->{worker}{cl_waiting} + $final->{app}{cl_waiting}, 0,
	'pgbouncer: no client left queued');

$bouncer->signal('INT');
$bouncer->finish;
$node->stop;
done_testing();
