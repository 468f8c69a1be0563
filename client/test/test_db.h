/*
 * test_db.h - the database helpers of the C tests (test_txb.c,
 * test_waiter.c): the monotonic clock their deadlines use, a connection
 * that bails out of the whole test program when it cannot be made, and a
 * setup statement whose failure counts as a failed test.  Include after
 * tap.h and tx_barrier.h.  Static inline, so a test that does not use one
 * of them is not warned about it.
 */
#ifndef TXB_TEST_DB_H
#define TXB_TEST_DB_H

#include <stdlib.h>
#include <time.h>

#include <libpq-fe.h>

#include "tap.h"

/* CLOCK_MONOTONIC in seconds. */
static inline double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Connects, or bails out of the test program. */
static inline PGconn *
connect_db(const char *info)
{
	PGconn	   *c = PQconnectdb(info);

	if (c == NULL || PQstatus(c) != CONNECTION_OK)
	{
		tap_diag("cannot connect to \"%s\": %s", info,
				 c ? PQerrorMessage(c) : "out of memory");
		tap_bail("no database connection");
		exit(1);
	}
	return c;
}

/* Runs a statement that must succeed; a failure counts as a failed test. */
static inline int
exec_ok(PGconn *c, const char *sql)
{
	PGresult   *res = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(res);
	int			ok = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);

	if (!ok)
		tap_ok(0, "setup statement \"%s\": %s", sql, PQerrorMessage(c));
	PQclear(res);
	return ok;
}

#endif							/* TXB_TEST_DB_H */
