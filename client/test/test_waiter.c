/*
 * test_waiter.c - tests of the shared waiter (txb_waiter_*) against real
 * servers.  Output is TAP (run it with prove).
 *
 * Environment:
 *   TXB_TEST_PRELOADED_CONNINFO  a database with the extension on a server
 *                                with tx_barrier in shared_preload_libraries
 *                                (all tests are skipped when it is unset)
 *   TXB_TEST_CONNINFO            a database with the extension on a server
 *                                without preloading (the 55000 test)
 *   TXB_TEST_NOEXT_CONNINFO      a database without the extension (42883)
 *
 * The waiter is driven from this one thread, as an application's event
 * loop would drive it: every wait for a condition (the waiter's backend
 * asleep on given tokens in barrier_waiters(), an answer, a backend gone
 * from pg_stat_activity) polls the waiter's socket and looks again; no
 * test sleeps in place of a condition.
 */
#include "tx_barrier.h"
#include "tap.h"
#include "test_db.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long any awaited condition may take (valgrind is slow). */
#define DEADLINE_S 60.0
#define APP "txb_test_waiter"
#define MAX_ANSWERS 2048

static const char *preloaded = NULL;
static PGconn *mon;				/* watches barrier_waiters, pg_stat_activity */

typedef struct answer
{
	txb_token	token;
	txb_state	state;
	txb_error	code;
	char		sqlstate[6];
} answer;

static answer answers[MAX_ANSWERS];
static int	nanswers;

/* A number from a one-value query on mon, -1 on error. */
static long
query_long(const char *sql, const char *param)
{
	const char *params[1] = {param};
	PGresult   *res = PQexecParams(mon, sql, param ? 1 : 0, NULL, params,
								   NULL, NULL, 0);
	long		v = -1;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		v = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	else
		tap_diag("monitor query failed: %s", PQerrorMessage(mon));
	PQclear(res);
	return v;
}

static PGconn *
producer(txb_token *token)
{
	PGconn	   *p = connect_db(preloaded);

	exec_ok(p, "BEGIN");
	if (txb_enqueue(p, token) != 0)
		tap_ok(0, "setup: txb_enqueue: %s", txb_error_message());
	return p;
}

/* Takes every answer the waiter has into answers[]. */
static void
take_answers(txb_waiter *w)
{
	txb_token	t;
	txb_state	s;

	while (nanswers < MAX_ANSWERS && txb_waiter_next(w, &t, &s) == 1)
	{
		answer	   *a = &answers[nanswers++];

		a->token = t;
		a->state = s;
		a->code = txb_error_code();
		(void) snprintf(a->sqlstate, sizeof(a->sqlstate), "%s",
						txb_error_sqlstate());
	}
}

static const answer *
answer_of(txb_token token)
{
	int			i;

	for (i = 0; i < nanswers; i++)
		if (answers[i].token == token)
			return &answers[i];
	return NULL;
}

/* Drives the waiter for at most ms milliseconds (less if it has news). */
static void
drive(txb_waiter *w, int ms)
{
	int			tmo;
	txb_poll_status st = txb_waiter_poll(w, &tmo);
	struct pollfd pfd;

	take_answers(w);
	if (st == TXB_POLL_READY)
		return;
	if (tmo < 0 || tmo > ms)
		tmo = ms;
	pfd.fd = txb_waiter_socket(w);
	pfd.events = POLLIN | (st == TXB_POLL_WRITING ? POLLOUT : 0);
	pfd.revents = 0;
	(void) poll(&pfd, pfd.fd >= 0 ? 1 : 0, tmo);
	(void) txb_waiter_poll(w, NULL);
	take_answers(w);
}

/* How many of tokens the waiter's backend sleeps on (barrier_waiters()). */
static long
registered(txb_waiter *w, const txb_token *tokens, int n)
{
	char		pid[16];
	char	   *array;
	char	   *p;
	const char *params[2];
	PGresult   *res;
	long		v = -1;
	int			i;

	if (txb_waiter_backend_pid(w) == 0)
		return 0;
	snprintf(pid, sizeof(pid), "%d", txb_waiter_backend_pid(w));
	array = malloc((size_t) n * (TXB_TOKEN_MAXLEN + 1) + 3);
	if (array == NULL)
		return -1;
	p = array;
	*p++ = '{';
	for (i = 0; i < n; i++)
	{
		if (i > 0)
			*p++ = ',';
		p += txb_token_format(tokens[i], p, TXB_TOKEN_BUFSIZE);
	}
	*p++ = '}';
	*p = '\0';
	params[0] = pid;
	params[1] = array;
	res = PQexecParams(mon,
					   "SELECT count(DISTINCT token) FROM barrier_waiters() "
					   "WHERE pid = $1::int AND token = ANY ($2::xid8[])",
					   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		v = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	free(array);
	return v;
}

/* Drives the waiter until its backend sleeps on all n tokens. */
static int
until_registered(txb_waiter *w, const txb_token *tokens, int n)
{
	double		deadline = now_s() + DEADLINE_S;

	while (now_s() < deadline)
	{
		if (registered(w, tokens, n) == n)
			return 1;
		drive(w, 10);
	}
	return 0;
}

/* Drives the waiter until token is answered; its answer or NULL. */
static const answer *
until_answered(txb_waiter *w, txb_token token)
{
	double		deadline = now_s() + DEADLINE_S;

	while (now_s() < deadline)
	{
		const answer *a = answer_of(token);

		if (a != NULL)
			return a;
		drive(w, 50);
	}
	return answer_of(token);
}

/* Drives the waiter (if any) until n backends are named APP. */
static int
until_backends(txb_waiter *w, long n)
{
	double		deadline = now_s() + DEADLINE_S;

	while (now_s() < deadline)
	{
		if (query_long("SELECT count(*) FROM pg_stat_activity "
					   "WHERE application_name = '" APP "'", NULL) == n)
			return 1;
		if (w != NULL)
			drive(w, 10);
		else
			(void) poll(NULL, 0, 10);
	}
	return 0;
}

static txb_waiter *
new_waiter(const char *info)
{
	char		buf[1024];
	txb_waiter *w;

	snprintf(buf, sizeof(buf), "%s application_name=" APP, info);
	w = txb_waiter_new(buf);
	if (w == NULL)
		tap_bail("txb_waiter_new failed");
	nanswers = 0;
	return w;
}

/* ---------------------------------------------------------------------- */

static void
test_arguments(void)
{
	txb_waiter *w;

	tap_ok(txb_waiter_new(NULL) == NULL, "txb_waiter_new(NULL) fails");
	tap_is_int(txb_error_code(), TXB_ERR_ARGUMENT, "... TXB_ERR_ARGUMENT");
	tap_is_int(txb_waiter_add(NULL, 5), -1, "add to a NULL waiter fails");
	tap_is_int(txb_waiter_poll(NULL, NULL), TXB_POLL_FAILED,
			   "poll of a NULL waiter fails");
	w = new_waiter(preloaded);
	tap_is_int(txb_waiter_add(w, 0), -1, "token 0 is refused");
	tap_is_int(txb_error_code(), TXB_ERR_ARGUMENT, "... TXB_ERR_ARGUMENT");
	tap_is_int(txb_waiter_wait(w, 1000), 0,
			   "nothing pending: txb_waiter_wait returns 0 at once");
	tap_is_int(txb_waiter_socket(w), -1, "... and nothing connected");
	tap_is_int(txb_waiter_pending(w), 0, "nothing pending");
	txb_waiter_free(w);
	txb_waiter_free(NULL);
}

static void
test_many(void)
{
	enum
	{
		NPROD = 10, PER = 50
	};
	txb_waiter *w = new_waiter(preloaded);
	PGconn	   *ps[NPROD];
	txb_token	tokens[NPROD * PER];
	int			n = 0;
	int			i;
	int			j;
	int			right = 0;
	char		pid[16];

	for (i = 0; i < NPROD; i++)
	{
		ps[i] = producer(&tokens[n++]);
		for (j = 1; j < PER; j++)
		{
			char		sql[64];

			snprintf(sql, sizeof(sql), "SAVEPOINT s%d", j);
			exec_ok(ps[i], sql);
			(void) txb_enqueue(ps[i], &tokens[n++]);
			snprintf(sql, sizeof(sql), "RELEASE SAVEPOINT s%d", j);
			exec_ok(ps[i], sql);
		}
	}
	for (i = 0; i < n; i++)
		(void) txb_waiter_add(w, tokens[i]);
	(void) txb_waiter_add(w, tokens[0]);	/* a duplicate: answered once */
	tap_is_int(txb_waiter_pending(w), NPROD * PER, "500 tokens pending");
	tap_ok(until_registered(w, tokens, n),
		   "one backend sleeps on all 500 tokens");
	/*
	 * No other backend sleeps on any token.  (The waiter's own may be
	 * between two statements: a cancel that arrives late makes it issue the
	 * same tokens again.)
	 */
	snprintf(pid, sizeof(pid), "%d", txb_waiter_backend_pid(w));
	tap_is_int(query_long("SELECT count(*) FROM barrier_waiters() "
						  "WHERE pid <> $1::int", pid), 0,
			   "... and no other backend waits");
	tap_is_int(query_long("SELECT count(*) FROM pg_stat_activity "
						  "WHERE application_name = '" APP "'", NULL), 1,
			   "... on one connection");
	for (i = 0; i < NPROD; i++)
		exec_ok(ps[i], i < 7 ? "COMMIT" : "ROLLBACK");
	for (i = 0; i < n; i++)
	{
		const answer *a = until_answered(w, tokens[i]);

		if (a && a->state == (i / PER < 7 ? TXB_COMMITTED : TXB_ABORTED))
			right++;
	}
	tap_is_int(right, NPROD * PER, "every token answered with its outcome");
	tap_is_int(nanswers, NPROD * PER, "... once each");
	tap_is_int(txb_waiter_pending(w), 0, "nothing pending afterwards");
	for (i = 0; i < NPROD; i++)
		PQfinish(ps[i]);
	txb_waiter_free(w);
	tap_ok(until_backends(NULL, 0), "txb_waiter_free closes the connection");
}

static void
test_savepoint_and_added(void)
{
	txb_waiter *w = new_waiter(preloaded);
	txb_token	top = 0;
	txb_token	sub = 0;
	txb_token	other = 0;
	txb_token	both[2];
	PGconn	   *p = producer(&top);
	PGconn	   *q;
	const answer *a;

	(void) txb_waiter_add(w, top);
	tap_ok(until_registered(w, &top, 1), "the waiter sleeps on one token");
	exec_ok(p, "SAVEPOINT s");
	(void) txb_enqueue(p, &sub);
	(void) txb_waiter_add(w, sub);
	both[0] = top;
	both[1] = sub;
	tap_ok(until_registered(w, both, 2),
		   "a token added while it sleeps: the statement is issued again");
	tap_ok(txb_waiter_cancels(w) >= 1, "... after a cancel");
	exec_ok(p, "ROLLBACK TO SAVEPOINT s");
	a = until_answered(w, sub);
	tap_ok(a && a->state == TXB_ABORTED,
		   "the rolled-back savepoint's token is answered aborted");
	tap_ok(answer_of(top) == NULL, "... while the top level still runs");
	q = producer(&other);
	exec_ok(q, "COMMIT");
	(void) txb_waiter_add(w, other);
	a = until_answered(w, other);
	tap_ok(a && a->state == TXB_COMMITTED,
		   "an ended token added while it sleeps is answered");
	tap_ok(answer_of(top) == NULL, "... the top level still waited for");
	exec_ok(p, "COMMIT");
	a = until_answered(w, top);
	tap_ok(a && a->state == TXB_COMMITTED, "the top level: committed");
	PQfinish(p);
	PQfinish(q);
	txb_waiter_free(w);
}

static void
test_prepared(void)
{
	txb_waiter *w = new_waiter(preloaded);
	txb_token	tc = 0;
	txb_token	ta = 0;
	txb_token	both[2];
	PGconn	   *pc = producer(&tc);
	PGconn	   *pa = producer(&ta);
	const answer *a;

	PQclear(PQexec(mon, "ROLLBACK PREPARED 'txb_waiter_c'"));
	PQclear(PQexec(mon, "ROLLBACK PREPARED 'txb_waiter_a'"));
	exec_ok(pc, "PREPARE TRANSACTION 'txb_waiter_c'");
	exec_ok(pa, "PREPARE TRANSACTION 'txb_waiter_a'");
	(void) txb_waiter_add(w, tc);
	(void) txb_waiter_add(w, ta);
	both[0] = tc;
	both[1] = ta;
	tap_ok(until_registered(w, both, 2),
		   "the waiter sleeps on two prepared transactions");
	exec_ok(mon, "COMMIT PREPARED 'txb_waiter_c'");
	a = until_answered(w, tc);
	tap_ok(a && a->state == TXB_COMMITTED, "COMMIT PREPARED: committed");
	tap_ok(answer_of(ta) == NULL, "... the other still waited for");
	exec_ok(mon, "ROLLBACK PREPARED 'txb_waiter_a'");
	a = until_answered(w, ta);
	tap_ok(a && a->state == TXB_ABORTED, "ROLLBACK PREPARED: aborted");
	PQfinish(pc);
	PQfinish(pa);
	txb_waiter_free(w);
}

static void
test_remove_and_bad_token(void)
{
	txb_waiter *w = new_waiter(preloaded);
	txb_token	good = 0;
	txb_token	gone = 0;
	txb_token	bad = (txb_token) 1 << 40;
	PGconn	   *p = producer(&good);
	PGconn	   *q = producer(&gone);
	const answer *a;

	(void) txb_waiter_add(w, good);
	(void) txb_waiter_add(w, gone);
	tap_ok(until_registered(w, &good, 1), "the waiter sleeps");
	tap_is_int(txb_waiter_remove(w, gone), 1, "a pending token is removed");
	tap_is_int(txb_waiter_remove(w, gone), 0, "... once");
	tap_is_int(txb_waiter_pending(w), 1, "... one token left");
	(void) txb_waiter_add(w, bad);
	a = until_answered(w, bad);
	tap_ok(a && a->state == TXB_ERROR && a->code == TXB_ERR_SERVER,
		   "a token in the future fails with TXB_ERR_SERVER");
	tap_is_str(a ? a->sqlstate : "", "22023", "... SQLSTATE 22023");
	tap_ok(answer_of(good) == NULL, "... the good token still waited for");
	tap_ok(until_registered(w, &good, 1), "... and slept on again");
	exec_ok(q, "COMMIT");
	exec_ok(p, "COMMIT");
	a = until_answered(w, good);
	tap_ok(a && a->state == TXB_COMMITTED, "the good token: committed");
	tap_ok(answer_of(gone) == NULL, "the removed token is never answered");
	PQfinish(p);
	PQfinish(q);
	txb_waiter_free(w);
}

static void
test_terminate(void)
{
	txb_waiter *w = new_waiter(preloaded);
	txb_token	t[3] = {0, 0, 0};
	PGconn	   *ps[3];
	char		pid[16];
	int			old;
	int			i;
	const answer *a0;
	const answer *a1;
	const answer *a2;

	for (i = 0; i < 3; i++)
		ps[i] = producer(&t[i]);
	for (i = 0; i < 3; i++)
		(void) txb_waiter_add(w, t[i]);
	tap_ok(until_registered(w, t, 3), "the waiter sleeps on three tokens");
	old = txb_waiter_backend_pid(w);
	snprintf(pid, sizeof(pid), "%d", old);
	tap_is_int(query_long("SELECT pg_terminate_backend($1::int)::int", pid), 1,
			   "pg_terminate_backend() of the waiter's backend");
	/* Two end while it is down or connecting again. */
	exec_ok(ps[0], "COMMIT");
	exec_ok(ps[1], "ROLLBACK");
	a0 = until_answered(w, t[0]);
	a1 = until_answered(w, t[1]);
	tap_ok(a0 && a0->state == TXB_COMMITTED && a1 &&
		   a1->state == TXB_ABORTED,
		   "tokens ended meanwhile: answered after the reconnect");
	tap_ok(until_registered(w, &t[2], 1),
		   "the third is slept on again, on a new backend");
	tap_ok(txb_waiter_backend_pid(w) != old && txb_waiter_backend_pid(w) != 0,
		   "... with another pid");
	tap_is_int(txb_waiter_reconnects(w), 1, "... one reconnect");
	tap_ok(until_backends(w, 1), "... one connection");
	tap_ok(answer_of(t[2]) == NULL, "the third still waited for");
	exec_ok(ps[2], "COMMIT");
	a2 = until_answered(w, t[2]);
	tap_ok(a2 && a2->state == TXB_COMMITTED, "... and answered committed");
	for (i = 0; i < 3; i++)
		PQfinish(ps[i]);
	txb_waiter_free(w);
	tap_ok(until_backends(NULL, 0), "txb_waiter_free while idle: no backend");
}

static void
test_free_while_sleeping(void)
{
	txb_waiter *w = new_waiter(preloaded);
	txb_token	t = 0;
	PGconn	   *p = producer(&t);

	(void) txb_waiter_add(w, t);
	tap_ok(until_registered(w, &t, 1), "the waiter sleeps");
	txb_waiter_free(w);
	tap_ok(until_backends(NULL, 0),
		   "txb_waiter_free while it sleeps: the backend ends");
	exec_ok(p, "ROLLBACK");
	PQfinish(p);
}

static void
test_blocking_wait(void)
{
	txb_waiter *w = new_waiter(preloaded);
	txb_token	t = 0;
	PGconn	   *p = producer(&t);
	txb_token	got = 0;
	txb_state	st = TXB_ERROR;

	(void) txb_waiter_add(w, t);
	tap_is_int(txb_waiter_wait(w, 200), 0,
			   "txb_waiter_wait: 0 when the timeout passes first");
	tap_is_int(txb_waiter_pending(w), 1, "... the token still pending");
	exec_ok(p, "COMMIT");
	tap_is_int(txb_waiter_wait(w, (int) (DEADLINE_S * 1000)), 1,
			   "txb_waiter_wait: 1 once answered");
	tap_is_int(txb_waiter_next(w, &got, &st), 1, "... the answer");
	tap_ok(got == t && st == TXB_COMMITTED, "... committed");
	tap_is_int(txb_waiter_next(w, &got, &st), 0, "... only one");
	PQfinish(p);
	txb_waiter_free(w);
}

/* Does the database of c have barrier_wait_any() (not the portable edition)? */
static int
has_wait_any(PGconn *c)
{
	PGresult   *res = PQexec(c, "SELECT to_regproc('barrier_wait_any') IS NOT NULL");
	int			yes = PQresultStatus(res) == PGRES_TUPLES_OK &&
		PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;

	PQclear(res);
	return yes;
}

static void
test_unavailable(const char *plain, const char *noext)
{
	txb_waiter *w;
	PGconn	   *p;
	txb_token	ended = 0;
	txb_token	running = 0;
	const answer *a;

	if (plain == NULL || noext == NULL)
	{
		printf("ok %d # SKIP TXB_TEST_CONNINFO or TXB_TEST_NOEXT_CONNINFO unset\n",
			   ++tap_count);
		return;
	}
	p = connect_db(plain);
	exec_ok(p, "BEGIN");
	(void) txb_enqueue(p, &ended);
	exec_ok(p, "COMMIT");
	exec_ok(p, "BEGIN");
	(void) txb_enqueue(p, &running);
	w = new_waiter(plain);
	(void) txb_waiter_add(w, ended);
	a = until_answered(w, ended);
	if (has_wait_any(p))
	{
		tap_ok(a && a->state == TXB_COMMITTED,
			   "without preloading: an ended token is answered");
		(void) txb_waiter_add(w, running);
		a = until_answered(w, running);
		tap_ok(a && a->state == TXB_ERROR && a->code == TXB_ERR_UNAVAILABLE,
			   "... a running one fails with TXB_ERR_UNAVAILABLE");
		tap_is_str(a ? a->sqlstate : "", "55000", "... SQLSTATE 55000");
	}
	else
	{
		/* The portable edition: no barrier_wait_any() at all. */
		tap_ok(a && a->state == TXB_ERROR && a->code == TXB_ERR_UNAVAILABLE,
			   "portable edition: even an ended token fails with TXB_ERR_UNAVAILABLE");
		tap_is_str(a ? a->sqlstate : "", "42883", "... SQLSTATE 42883");
	}
	exec_ok(p, "ROLLBACK");
	PQfinish(p);
	txb_waiter_free(w);

	w = new_waiter(noext);
	(void) txb_waiter_add(w, 5);
	a = until_answered(w, 5);
	tap_ok(a && a->state == TXB_ERROR && a->code == TXB_ERR_UNAVAILABLE,
		   "without the extension: TXB_ERR_UNAVAILABLE");
	tap_is_str(a ? a->sqlstate : "", "42883", "... SQLSTATE 42883");
	txb_waiter_free(w);
}

int
main(void)
{
	preloaded = getenv("TXB_TEST_PRELOADED_CONNINFO");
	if (preloaded == NULL || preloaded[0] == '\0')
	{
		printf("1..0 # SKIP TXB_TEST_PRELOADED_CONNINFO not set\n");
		return 0;
	}
	mon = connect_db(preloaded);
	test_arguments();
	test_many();
	test_savepoint_and_added();
	test_prepared();
	test_remove_and_bad_token();
	test_terminate();
	test_free_while_sleeping();
	test_blocking_wait();
	test_unavailable(getenv("TXB_TEST_CONNINFO"),
					 getenv("TXB_TEST_NOEXT_CONNINFO"));
	PQfinish(mon);
	return tap_done();
}
