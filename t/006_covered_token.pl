# A token needs no WAL record of its own when a transaction with a newer
# xid already has a durable commit record: replay advances nextXid past it,
# so the token's xid can never be handed out again.  Prove the shortcut is
# taken only then, and that such a token still reads "aborted" after a
# crash, never another transaction's fate.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Utils;
use Test::More;
use TxbTest;

my $node = txb_node('covered', allows_streaming => 1);
$node->safe_psql('postgres', 'CREATE TABLE t (i int)');

sub counters
{
	my ($s) = @_;
	my $r = $s->query_safe('SELECT token_records, tokens_covered FROM barrier_stats()');
	return [ split /\|/, $r ];
}

# Session A takes an xid T, then a newer transaction commits durably, then
# A enqueues: T is covered, no record.
my ($a) = txb_session($node);
my $t = $a->query_safe('BEGIN; SELECT pg_current_xact_id();');
$t =~ s/\s+//g;
my $before = counters($a);
$node->safe_psql('postgres', 'INSERT INTO t VALUES (1)');
my $newer = $node->safe_psql('postgres',
	q{SELECT max(xmin::text::bigint) FROM t});
cmp_ok($newer, '>', $t, 'the committed insert has a newer xid than the token');

my $token = $a->query_safe('SELECT barrier_enqueue()');
$token =~ s/\s+//g;
is($token, $t, 'the token is the xid taken before');
my $after = counters($a);
is_deeply([ $after->[0] - $before->[0], $after->[1] - $before->[1] ],
	[ 0, 1 ], 'no token record written: covered by the newer durable commit');

# A newer transaction that aborted covers nothing: its abort record is not
# flushed.  The next token gets its own record.
my ($b) = txb_session($node);
my $t2 = $b->query_safe('BEGIN; SELECT pg_current_xact_id();');
$t2 =~ s/\s+//g;
$node->safe_psql('postgres', 'BEGIN; INSERT INTO t VALUES (2); ROLLBACK;');
$before = counters($b);
my $token2 = $b->query_safe('SELECT barrier_enqueue()');
$token2 =~ s/\s+//g;
$after = counters($b);
is_deeply([ $after->[0] - $before->[0], $after->[1] - $before->[1] ],
	[ 1, 0 ], 'only an aborted newer transaction: a token record is written');

# Crash with both transactions open, then restart.
$node->stop('immediate');
$node->start;

for my $case ([ $token, 'covered token' ], [ $token2, 'token with its own record' ])
{
	my ($tok, $name) = @$case;
	is($node->safe_psql('postgres', "SELECT barrier_status('$tok')"),
		'aborted', "$name reads aborted after the crash");
	is($node->safe_psql('postgres',
		"SELECT '$tok'::xid8 < pg_current_xact_id()"),
		't', "$name is below the next xid after restart");
}

# New transactions never reuse either number.
for (1 .. 30)
{
	$node->safe_psql('postgres', 'INSERT INTO t VALUES (3)');
}
is($node->safe_psql('postgres',
	"SELECT count(*) FROM t WHERE xmin::text::xid8 IN ('$token', '$token2')"),
	'0', 'no new row carries either token xid');
is($node->safe_psql('postgres',
	"SELECT barrier_wait('$token', '1s') || ',' || barrier_wait('$token2', '1s')"),
	'aborted,aborted', 'both still read aborted after 30 new transactions');

$node->stop;
done_testing();
