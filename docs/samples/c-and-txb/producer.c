/*
 * producer.c - inserts an invoice and takes a barrier token in the same
 * transaction, publishes the token (prints it), then commits or rolls back
 * as told on standard input.
 *
 *   cc -o producer producer.c $(pkg-config --cflags --libs tx_barrier)
 *   ./producer AMOUNT       (libpq's PG* environment variables apply)
 */
#include <stdio.h>
#include <string.h>

#include <tx_barrier.h>

static int
run(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);
	int			ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(conn));
	PQclear(res);
	return ok ? 0 : -1;
}

int
main(int argc, char **argv)
{
	PGconn	   *conn = PQconnectdb("");
	PGresult   *res;
	const char *params[1];
	txb_token	token;
	char		text[TXB_TOKEN_BUFSIZE];
	char		answer[32] = "";

	if (argc != 2 || PQstatus(conn) != CONNECTION_OK || run(conn, "BEGIN") != 0)
	{
		fprintf(stderr, "usage: %s AMOUNT (%s)\n", argv[0], PQerrorMessage(conn));
		return 3;
	}
	params[0] = argv[1];
	res = PQexecParams(conn, "INSERT INTO invoices (amount) VALUES ($1) RETURNING id",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		fprintf(stderr, "%s", PQerrorMessage(conn));
		return 3;
	}

	/* The token of this transaction, taken before COMMIT ... */
	if (txb_enqueue(conn, &token) != 0)
	{
		fprintf(stderr, "enqueue: %s\n", txb_error_message());
		return 3;
	}
	txb_token_format(token, text, sizeof text);
	/* ... and published with the task: here, printed for the worker. */
	printf("invoice %s token %s\n", PQgetvalue(res, 0, 0), text);
	fflush(stdout);
	PQclear(res);

	if (fgets(answer, sizeof answer, stdin) && strncmp(answer, "COMMIT", 6) == 0)
		run(conn, "COMMIT");
	else
		run(conn, "ROLLBACK");
	PQfinish(conn);
	return 0;
}
