/*
 * worker.c - waits (at most 30 s) for the transaction behind a token, then
 * reads the invoice only if it committed.
 *
 *   cc -o worker worker.c $(pkg-config --cflags --libs tx_barrier)
 *   ./worker TOKEN INVOICE_ID
 *
 * Exit status: 0 committed, 1 aborted, 2 still in progress, 3 error.
 */
#include <stdio.h>

#include <tx_barrier.h>

int
main(int argc, char **argv)
{
	PGconn	   *conn;
	PGresult   *res;
	txb_token	token;
	const char *params[1];

	if (argc != 3 || txb_token_parse(argv[1], &token) != 0)
	{
		fprintf(stderr, "usage: %s TOKEN INVOICE_ID\n", argv[0]);
		return 3;
	}
	conn = PQconnectdb("");		/* autocommit: wait first, then read */
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "%s", PQerrorMessage(conn));
		return 3;
	}

	switch (txb_wait(conn, token, 30000))
	{
		case TXB_COMMITTED:
			params[0] = argv[2];
			res = PQexecParams(conn, "SELECT amount FROM invoices WHERE id = $1",
							   1, NULL, params, NULL, NULL, 0);
			printf("committed: invoice %s of %s\n", argv[2], PQgetvalue(res, 0, 0));
			PQclear(res);
			PQfinish(conn);
			return 0;
		case TXB_ABORTED:
			printf("aborted: nothing to do\n");
			PQfinish(conn);
			return 1;
		case TXB_IN_PROGRESS:
			printf("still in progress after 30 s: retry later\n");
			PQfinish(conn);
			return 2;
		case TXB_ERROR:
			break;
	}
	fprintf(stderr, "wait failed: %s (SQLSTATE %s)\n", txb_error_message(),
			txb_error_sqlstate());
	PQfinish(conn);
	return 3;
}
