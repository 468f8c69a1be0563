# Many producers commit, roll back, or roll back a savepoint at random
# while waiters block on their transactions: every answer must agree with
# what the producer's transaction left in the database (its row exists if
# and only if the token reads "committed").
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use TxbTest;

my $node = txb_node('concurrent', conf => "max_connections = 50\n");
$node->safe_psql('postgres', q{
	CREATE TABLE committed_rows (token xid8 PRIMARY KEY);
	CREATE TABLE issued (token xid8, variant int);
	CREATE TABLE answers (token xid8, state barrier_state);
});

# Variants: 1 rollback, 2 commit, 3 savepoint rolled back then commit,
# 4 savepoint released then commit.  The token is recorded in "issued"
# after the transaction ended, in autocommit.
my $script = "${PostgreSQL::Test::Utils::tmp_check}/producer.sql";
PostgreSQL::Test::Utils::append_to_file($script, q{
\set v random(1, 4)
BEGIN;
\if :v >= 3
SAVEPOINT s;
\endif
SELECT barrier_enqueue() AS tok \gset
INSERT INTO committed_rows VALUES (:tok::text::xid8);
SELECT pg_sleep(0.002);
\if :v = 1
ROLLBACK;
\elif :v = 3
ROLLBACK TO SAVEPOINT s;
COMMIT;
\elif :v = 4
RELEASE SAVEPOINT s;
COMMIT;
\else
COMMIT;
\endif
INSERT INTO issued VALUES (:tok::text::xid8, :v);
});

# Enough waits on running transactions, with both outcomes: the condition
# both the waiters and the producers run until (not a fixed time, which a
# slow machine would fill with fewer of them).
my $enough = q{
	SELECT count(*) >= 25
		   AND count(DISTINCT a.state) FILTER (WHERE a.state <> 'in progress') = 2
	  FROM answers a JOIN issued i USING (token)};

# Two waiters pick producers' running transactions (their top-level xid is
# the token of the variants without a savepoint) and wait on them, until
# there are enough answers (or a guard against a hang).  The
# xid-to-xid8 cast assumes epoch 0, true of a fresh cluster.
my @waiters;
for my $w (1 .. 2)
{
	my ($out, $err) = ('', '');
	push @waiters, [
		IPC::Run::start(
			[
				'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-h', $node->host,
				'-p', $node->port, '-d', 'postgres', '-c', qq{
DO \$\$
DECLARE
	x xid8;
	s barrier_state;
	done boolean := false;
	t0 timestamptz := clock_timestamp();
BEGIN
	WHILE NOT done AND clock_timestamp() < t0 + interval '300 s' LOOP
		-- pg_stat_activity is otherwise read once per transaction
		PERFORM pg_stat_clear_snapshot();
		SELECT backend_xid::text::xid8 INTO x
		  FROM pg_stat_activity
		 WHERE application_name = 'txb_producer' AND backend_xid IS NOT NULL
		 ORDER BY random() LIMIT 1;
		IF x IS NOT NULL THEN
			s := barrier_wait(x, '10s');
			INSERT INTO answers VALUES (x, s);
			COMMIT;
		END IF;
		$enough INTO done;
	END LOOP;
END
\$\$;}
			],
			'>', \$out, '2>', \$err),
		\$out, \$err ];
}

# The producers: batches of pgbench transactions until the waiters have
# enough (every batch issues 6 x 20 tokens).
my ($pgb_err, $pgb_ok, $batches) = ('', 1, 0);
# The test framework sets PGAPPNAME for every client; name the producers.
{
	local $ENV{PGAPPNAME} = 'txb_producer';
	my $guard = time + 300;
	do
	{
		my ($out, $err) = ('', '');
		$pgb_ok &&= IPC::Run::run(
			[
				'pgbench', '-n', '-c', '6', '-j', '2', '-t', '20',
				'-h', $node->host, '-p', $node->port, '-f', $script, 'postgres'
			],
			'>', \$out, '2>', \$err);
		$pgb_err .= $err;
		$batches++;
	} until ($node->safe_psql('postgres', $enough) eq 't' || time > $guard);
}
note "$batches pgbench batches";

ok($pgb_ok, 'pgbench producers ran without errors')
  or diag($pgb_err);
for my $w (@waiters)
{
	ok($w->[0]->finish, 'waiter loop ran without errors') or diag(${ $w->[2] });
}

# A running transaction's top-level xid is its token in the variants
# without a savepoint; in the others the token is the subtransaction's.
my ($issued, $answered) = split /\|/, $node->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM issued),
		   (SELECT count(*) FROM answers a JOIN issued i USING (token))});
cmp_ok($issued, '>', 100, "producers issued $issued tokens");
cmp_ok($answered, '>', 20,
	"waiters answered $answered waits on running transactions' tokens");

is( $node->safe_psql('postgres', q{
	SELECT count(*) FROM answers a JOIN issued i USING (token)
	 WHERE a.state = 'in progress'
		OR (a.state = 'committed') <> EXISTS
			(SELECT 1 FROM committed_rows c WHERE c.token = a.token)}),
	'0', 'every blocking wait agrees with the rows its producer left');
is( $node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT a.state::text, ',' ORDER BY a.state::text)
	  FROM answers a JOIN issued i USING (token)}),
	'aborted,committed', 'waits saw both outcomes');

is( $node->safe_psql('postgres', q{
	SELECT count(*) FROM barrier_wait_all((SELECT array_agg(token) FROM issued)) w
	 WHERE (w.state = 'committed') <> EXISTS
			(SELECT 1 FROM committed_rows c WHERE c.token = w.token)}),
	'0', 'barrier_wait_all over all tokens agrees with the rows');

is( $node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT variant || ':' || barrier_status(token), ',' ORDER BY variant || ':' || barrier_status(token))
	  FROM issued}),
	'1:aborted,2:committed,3:aborted,4:committed',
	'each variant ends as expected: rollback and rolled-back savepoint abort');

$node->stop;
done_testing();
