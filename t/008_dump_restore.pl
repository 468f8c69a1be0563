# A database using tx_barrier survives pg_dump and restore: the extension
# is re-created (not its members dumped), and columns of type
# barrier_state keep their values.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Utils;
use Test::More;
use TxbTest;

my $node = txb_node('dump');
$node->safe_psql('postgres', q{
	CREATE TABLE outcomes (token xid8, state barrier_state);
	INSERT INTO outcomes SELECT barrier_enqueue(), 'committed';
	INSERT INTO outcomes VALUES ('2', 'aborted'), ('2', 'in progress');
});

my $dump = "${PostgreSQL::Test::Utils::tmp_check}/dump.sql";
$node->command_ok(
	[ 'pg_dump', '-h', $node->host, '-p', $node->port, '-f', $dump, 'postgres' ],
	'pg_dump succeeds');
my $sql = slurp_file($dump);
like($sql, qr/CREATE EXTENSION IF NOT EXISTS tx_barrier WITH SCHEMA pg_catalog;/,
	'the dump re-creates the extension');
unlike($sql, qr/CREATE (TYPE|FUNCTION) pg_catalog\.barrier/,
	'and does not dump its members');

$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok(
	[
		'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-h', $node->host,
		'-p', $node->port, '-f', $dump, 'restored'
	],
	'the dump restores into a new database');
is( $node->safe_psql('restored',
		'SELECT string_agg(state::text, \',\' ORDER BY state) FROM outcomes'),
	'in progress,committed,aborted', 'barrier_state values restored, in enum order');
is( $node->safe_psql('restored',
		'SELECT barrier_status(token) FROM outcomes WHERE state = \'committed\''),
	'committed', 'a token from before the dump still answers in the restored database');

$node->stop;
done_testing();
