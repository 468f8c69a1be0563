/*
 * wait_for_token.c - waits for the transaction behind a tx_barrier token and
 * prints what became of it.
 *
 *   cc wait_for_token.c $(pkg-config --cflags --libs tx_barrier)
 *   ./a.out "dbname=shop" 7421
 *
 * Exit status: 0 committed, 1 aborted, 3 error.
 */
#include <stdio.h>

#include <tx_barrier.h>

int
main(int argc, char **argv)
{
	PGconn	   *conn;
	txb_token	token;
	txb_state	state;

	if (argc != 3)
	{
		fprintf(stderr, "usage: %s CONNINFO TOKEN\n", argv[0]);
		return 3;
	}
	if (txb_token_parse(argv[2], &token) != 0)
	{
		fprintf(stderr, "%s\n", txb_error_message());
		return 3;
	}
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "%s", PQerrorMessage(conn));
		PQfinish(conn);
		return 3;
	}

	/* Blocks until the producer's transaction commits or aborts. */
	state = txb_wait(conn, token, -1);
	if (state == TXB_ERROR)
		fprintf(stderr, "wait failed: %s\n", txb_error_message());
	else
		printf("%s\n", txb_state_name(state));
	PQfinish(conn);

	switch (state)
	{
		case TXB_COMMITTED:
			return 0;
		case TXB_ABORTED:
			return 1;
		case TXB_IN_PROGRESS:
			return 2;
		case TXB_ERROR:
			break;
	}
	return 3;
}
