/*
 * test_txb.c - tests of libtxbarrier against a running PostgreSQL server.
 * Output is TAP (run it with prove).
 *
 * Environment:
 *   TXB_TEST_CONNINFO        database with CREATE EXTENSION tx_barrier
 *                            (default: libpq's PG* variables)
 *   TXB_TEST_NOEXT_CONNINFO  a database without the extension; the tests
 *                            that need it are skipped when it is unset
 *
 * Producer and waiter always use separate connections; a third connection
 * watches pg_locks to know when a waiter is blocked on the producer's
 * transaction lock, so no test sleeps in place of a condition.
 */
#include "tx_barrier.h"
#include "tap.h"
#include "test_db.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long any awaited condition may take (valgrind is slow). */
#define DEADLINE_S 60.0

static const char *conninfo = "";
static PGconn *mon;				/* watches pg_locks */

/* ----------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */

static void
pause_ms(int ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long) (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* BEGIN and txb_enqueue on c; a failure counts as a failed test. */
static int
produce(PGconn *c, txb_token *token)
{
	if (!exec_ok(c, "BEGIN"))
		return 0;
	if (txb_enqueue(c, token) != 0)
	{
		tap_ok(0, "setup: txb_enqueue: %s", txb_error_message());
		return 0;
	}
	return 1;
}

/* A token whose transaction committed / aborted. */
static txb_token
finished_token(PGconn *c, int commit)
{
	txb_token	t = 0;

	if (produce(c, &t))
		exec_ok(c, commit ? "COMMIT" : "ROLLBACK");
	return t;
}

/*
 * Waits until the backend pid waits for a transaction lock, for the
 * transaction whose xid is the low 32 bits of token (any, if token is 0).
 * Returns 1 once it does, 0 at the deadline.
 */
static int
await_blocked(int pid, txb_token token)
{
	char		pidbuf[16];
	char		xidbuf[16];
	const char *params[2];
	double		deadline = now_s() + DEADLINE_S;

	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	snprintf(xidbuf, sizeof(xidbuf), "%u", (unsigned) (token & 0xFFFFFFFFu));
	params[0] = pidbuf;
	params[1] = token ? xidbuf : "";
	while (now_s() < deadline)
	{
		PGresult   *res = PQexecParams(mon,
									   "SELECT count(*) FROM pg_locks "
									   "WHERE pid = $1::int "
									   "AND locktype = 'transactionid' "
									   "AND NOT granted "
									   "AND ($2 = '' OR transactionid::text = $2)",
									   2, NULL, params, NULL, NULL, 0);
		int			n = -1;

		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			n = (int) strtol(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		if (n < 0)
		{
			tap_diag("pg_locks query failed: %s", PQerrorMessage(mon));
			return 0;
		}
		if (n > 0)
			return 1;
		pause_ms(5);
	}
	return 0;
}

/*
 * After a *_send(): polls the connection's socket until txb_poll() says
 * READY.  Returns 1 when ready, -1 if txb_poll failed, 0 at the deadline.
 */
static int
await_ready(PGconn *c, double seconds)
{
	double		deadline = now_s() + seconds;

	for (;;)
	{
		struct pollfd pfd;
		txb_poll_status st = txb_poll(c);
		double		left;

		if (st == TXB_POLL_READY)
			return 1;
		if (st == TXB_POLL_FAILED)
			return -1;
		left = deadline - now_s();
		if (left <= 0)
			return 0;
		pfd.fd = PQsocket(c);
		pfd.events = POLLIN | (st == TXB_POLL_WRITING ? POLLOUT : 0);
		pfd.revents = 0;
		(void) poll(&pfd, 1, (int) (left * 1000) + 1);
	}
}

/* A blocking wait in a thread of its own. */
typedef struct waiter
{
	PGconn	   *conn;
	txb_token	token;
	const txb_token *tokens;
	txb_state  *states;
	size_t		n;
	int			timeout_ms;
	txb_state	state;
	int			rc;
	txb_error	err;
	char		msg[256];
	pthread_t	thread;
} waiter;

static void *
waiter_main(void *arg)
{
	waiter	   *w = arg;

	if (w->tokens != NULL)
		w->rc = txb_wait_all(w->conn, w->tokens, w->states, w->n,
							 w->timeout_ms);
	else
		w->state = txb_wait(w->conn, w->token, w->timeout_ms);
	w->err = txb_error_code();
	snprintf(w->msg, sizeof(w->msg), "%s", txb_error_message());
	return NULL;
}

static int
waiter_start(waiter *w)
{
	if (pthread_create(&w->thread, NULL, waiter_main, w) != 0)
	{
		tap_ok(0, "setup: pthread_create");
		return 0;
	}
	return 1;
}

/* ----------------------------------------------------------------------
 * Tests without a server
 * ---------------------------------------------------------------------- */

static void
test_tokens(void)
{
	char		buf[TXB_TOKEN_BUFSIZE];
	char		small[4];
	txb_token	t;
	static const txb_token values[] = {0, 1, 9, 10, 737, 4294967295u,
		4294967296u, UINT64_MAX - 1, UINT64_MAX};
	static const char *const bad[] = {"", "-1", "+1", " 1", "1 ", "1\n",
		"12a", "0x10", "1e3", "1.0", "18446744073709551616",
		"99999999999999999999", "184467440737095516150", "\xc2\xb9",
	"\xef\xbc\x91"};
	size_t		i;
	int			all_round = 1;

	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++)
	{
		int			len = txb_token_format(values[i], buf, sizeof(buf));

		t = 12345;
		if (len != (int) strlen(buf) || txb_token_parse(buf, &t) != 0 ||
			t != values[i])
		{
			all_round = 0;
			tap_diag("round trip of %llu failed: \"%s\"",
					 (unsigned long long) values[i], buf);
		}
	}
	tap_ok(all_round, "format then parse returns every value unchanged");

	tap_is_int(txb_token_format(UINT64_MAX, buf, sizeof(buf)), 20,
			   "UINT64_MAX formats as 20 characters");
	tap_is_str(buf, "18446744073709551615", "UINT64_MAX text");
	tap_is_int(txb_token_format(0, buf, sizeof(buf)), 1, "0 formats as 1 char");
	tap_is_str(buf, "0", "0 text");
	t = 0;
	tap_ok(txb_token_parse("18446744073709551615", &t) == 0 && t == UINT64_MAX,
		   "parse accepts UINT64_MAX");
	tap_ok(txb_token_parse("000042", &t) == 0 && t == 42,
		   "parse accepts leading zeros");

	memcpy(small, "xyz", 4);
	tap_is_int(txb_token_format(1234, small, sizeof(small)), -1,
			   "format into a too small buffer fails");
	tap_is_str(small, "xyz", "a too small buffer is left unchanged");
	tap_is_int(txb_error_code(), TXB_ERR_ARGUMENT,
			   "too small buffer: TXB_ERR_ARGUMENT");
	tap_is_int(txb_token_format(123, small, sizeof(small)), 3,
			   "format into a buffer of exactly the right size works");
	tap_is_int(txb_token_format(1, NULL, 10), -1, "format into NULL fails");

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		t = 777;
		if (!tap_ok(txb_token_parse(bad[i], &t) == -1 && t == 777 &&
					txb_error_code() == TXB_ERR_ARGUMENT &&
					txb_error_message()[0] != '\0',
					"parse rejects malformed token #%zu", i))
			tap_diag("  input \"%s\" gave %llu", bad[i],
					 (unsigned long long) t);
	}
	tap_ok(strstr(txb_error_message(), "malformed token") != NULL,
		   "malformed token message says so: %s", txb_error_message());
	tap_is_int(txb_token_parse(NULL, &t), -1, "parse of NULL text fails");
	tap_is_int(txb_token_parse("1", NULL), -1, "parse into NULL fails");
	tap_is_int(txb_token_parse("1", &t), 0, "a good parse succeeds ...");
	tap_is_int(txb_error_code(), TXB_ERR_NONE, "... and clears the error");
	tap_is_str(txb_error_message(), "", "... and the message");

	tap_is_str(txb_state_name(TXB_IN_PROGRESS), "in progress", "name of IN_PROGRESS");
	tap_is_str(txb_state_name(TXB_COMMITTED), "committed", "name of COMMITTED");
	tap_is_str(txb_state_name(TXB_ABORTED), "aborted", "name of ABORTED");
	tap_is_str(txb_state_name(TXB_ERROR), "error", "name of ERROR");
	tap_is_str(txb_state_name((txb_state) 42), "unknown", "name of a bad value");
	tap_is_str(txb_version(), TXB_VERSION, "txb_version matches the header");
}

/* Another thread's failure leaves this thread's error record alone. */
static void *
failing_thread(void *arg)
{
	txb_token	t;

	(void) arg;
	(void) txb_token_parse("bad", &t);
	return (void *) (long) txb_error_code();
}

static void
test_thread_local_errors(void)
{
	pthread_t	th;
	void	   *other = NULL;
	txb_token	t;

	(void) txb_token_parse("7", &t);
	if (pthread_create(&th, NULL, failing_thread, NULL) != 0)
	{
		tap_ok(0, "setup: pthread_create");
		return;
	}
	pthread_join(th, &other);
	tap_is_int((long) other, TXB_ERR_ARGUMENT,
			   "the other thread saw its own error");
	tap_is_int(txb_error_code(), TXB_ERR_NONE,
			   "this thread's error record is untouched by another thread");
}

static void
test_bad_connections(void)
{
	txb_token	t = 5;
	txb_token	tokens[1] = {5};
	txb_state	states[1];
	PGconn	   *bad;

	tap_is_int(txb_enqueue(NULL, &t), -1, "enqueue on NULL connection fails");
	tap_is_int(txb_error_code(), TXB_ERR_CONNECTION, "... TXB_ERR_CONNECTION");
	tap_is_int(txb_status(NULL, 5), TXB_ERROR, "status on NULL connection");
	tap_is_int(txb_wait(NULL, 5, -1), TXB_ERROR, "wait on NULL connection");
	tap_is_int(txb_wait_all(NULL, tokens, states, 1, -1), -1,
			   "wait_all on NULL connection");
	tap_is_int(txb_wait_send(NULL, 5, -1), -1, "wait_send on NULL connection");
	tap_is_int(txb_wait_all_send(NULL, tokens, 1, -1), -1,
			   "wait_all_send on NULL connection");
	tap_is_int(txb_poll(NULL), TXB_POLL_FAILED, "poll on NULL connection");
	tap_is_int(txb_wait_result(NULL), TXB_ERROR, "wait_result on NULL");
	tap_is_int(txb_wait_all_result(NULL, states, 1), -1,
			   "wait_all_result on NULL");
	tap_is_int(txb_cancel(NULL), -1, "cancel on NULL connection");
	tap_is_int(txb_error_code(), TXB_ERR_CONNECTION, "... TXB_ERR_CONNECTION");

	bad = PQconnectdb("host=/nonexistent/txb port=1 connect_timeout=2");
	tap_is_int(txb_status(bad, 5), TXB_ERROR,
			   "status on a connection that failed to open");
	tap_is_int(txb_error_code(), TXB_ERR_CONNECTION, "... TXB_ERR_CONNECTION");
	tap_ok(strstr(txb_error_message(), "not open") != NULL,
		   "... message: %s", txb_error_message());
	tap_is_int(txb_wait_send(bad, 5, 0), -1, "wait_send on it fails");
	tap_is_int(txb_cancel(bad), -1, "cancel on it fails");
	PQfinish(bad);
}

/* ----------------------------------------------------------------------
 * Tests against the server
 * ---------------------------------------------------------------------- */

static void
test_argument_errors(PGconn *c)
{
	txb_token	tokens[2] = {3, 4};
	txb_state	states[2];

	tap_is_int(txb_enqueue(c, NULL), -1, "enqueue into a NULL token fails");
	tap_is_int(txb_error_code(), TXB_ERR_ARGUMENT, "... TXB_ERR_ARGUMENT");
	tap_is_int(txb_wait_all(c, NULL, states, 2, 0), -1,
			   "wait_all with NULL tokens and n > 0 fails");
	tap_is_int(txb_error_code(), TXB_ERR_ARGUMENT, "... TXB_ERR_ARGUMENT");
	tap_is_int(txb_wait_all(c, tokens, NULL, 2, 0), -1,
			   "wait_all with NULL states and n > 0 fails");
	tap_is_int(txb_wait_all_send(c, NULL, 1, 0), -1,
			   "wait_all_send with NULL tokens fails");
	tap_is_int(txb_wait_all(c, NULL, NULL, 0, -1), 0,
			   "wait_all of no tokens succeeds at once");
	tap_is_int(PQtransactionStatus(c), PQTRANS_IDLE,
			   "argument errors leave the connection idle");
	tap_is_int(txb_wait_result(c), TXB_ERROR,
			   "wait_result with nothing sent fails");
	tap_is_int(txb_error_code(), TXB_ERR_ARGUMENT, "... TXB_ERR_ARGUMENT");
}

static void
test_enqueue_status(PGconn *p, PGconn *w)
{
	txb_token	t = 0;
	txb_token	t2 = 0;

	if (!produce(p, &t))
		return;
	tap_ok(t > 2, "enqueue returns a token (%llu)", (unsigned long long) t);
	tap_is_int(txb_error_code(), TXB_ERR_NONE, "enqueue clears the error");
	tap_is_int(txb_enqueue(p, &t2), 0, "second enqueue in the transaction");
	tap_ok(t2 == t, "same transaction, same token");
	tap_is_int(txb_status(w, t), TXB_IN_PROGRESS,
			   "status from another connection: in progress");
	tap_is_int(txb_status(p, t), TXB_IN_PROGRESS,
			   "status of its own transaction: in progress");
	tap_is_int(txb_wait(w, t, 0), TXB_IN_PROGRESS,
			   "wait with timeout 0 is a status check");
	exec_ok(p, "COMMIT");
	tap_is_int(txb_status(w, t), TXB_COMMITTED, "status after COMMIT");

	if (!produce(p, &t))
		return;
	exec_ok(p, "ROLLBACK");
	tap_is_int(txb_status(w, t), TXB_ABORTED, "status after ROLLBACK");
	tap_is_int(txb_wait(w, t, -1), TXB_ABORTED,
			   "wait on an ended transaction returns at once");

	tap_is_int(txb_enqueue(p, &t), 0, "enqueue in autocommit");
	tap_is_int(txb_status(w, t), TXB_COMMITTED,
			   "an autocommit enqueue is committed at once");
}

static void
test_blocking_wait(PGconn *p, PGconn *w, int commit)
{
	waiter		wt;
	txb_token	t = 0;
	const char *what = commit ? "COMMIT" : "ROLLBACK";

	if (!produce(p, &t))
		return;
	memset(&wt, 0, sizeof(wt));
	wt.conn = w;
	wt.token = t;
	wt.timeout_ms = -1;
	if (!waiter_start(&wt))
		return;
	tap_ok(await_blocked(PQbackendPID(w), t),
		   "txb_wait blocks on the producer's transaction (%s case)", what);
	exec_ok(p, what);
	pthread_join(wt.thread, NULL);
	tap_is_int(wt.state, commit ? TXB_COMMITTED : TXB_ABORTED,
			   "txb_wait returns %s after %s",
			   commit ? "committed" : "aborted", what);
	if (wt.state == TXB_ERROR)
		tap_diag("  %s", wt.msg);
}

static void
test_timeout(PGconn *p, PGconn *w)
{
	txb_token	t = 0;
	double		start;
	double		took;

	if (!produce(p, &t))
		return;
	start = now_s();
	tap_is_int(txb_wait(w, t, 300), TXB_IN_PROGRESS,
			   "wait with a 300 ms timeout on a running transaction");
	took = now_s() - start;
	tap_ok(took >= 0.29 && took < DEADLINE_S,
		   "... returned after the timeout (%.3f s)", took);
	tap_is_int(txb_error_code(), TXB_ERR_NONE, "a timeout is not an error");
	tap_is_int(PQtransactionStatus(w), PQTRANS_IDLE,
			   "waiter connection idle after the timeout");
	exec_ok(p, "COMMIT");
	tap_is_int(txb_wait(w, t, INT_MAX), TXB_COMMITTED,
			   "wait with the largest timeout after COMMIT");
}

static void
test_wait_all(PGconn *p, PGconn *p2, PGconn *w)
{
	txb_token	c = finished_token(p, 1);
	txb_token	a = finished_token(p, 0);
	txb_token	r = 0;
	txb_token	tokens[4];
	txb_state	states[4] = {TXB_ERROR, TXB_ERROR, TXB_ERROR, TXB_ERROR};
	waiter		wt;
	txb_token  *many;
	txb_state  *many_states;
	size_t		i;
	int			all_committed = 1;

	if (!produce(p2, &r))
		return;
	tokens[0] = c;
	tokens[1] = a;
	tokens[2] = r;
	tokens[3] = c;
	tap_is_int(txb_wait_all(w, tokens, states, 4, 200), 0,
			   "wait_all with a timeout succeeds");
	tap_ok(states[0] == TXB_COMMITTED && states[1] == TXB_ABORTED &&
		   states[2] == TXB_IN_PROGRESS && states[3] == TXB_COMMITTED,
		   "wait_all states in input order: committed, aborted, in progress, "
		   "committed (got %s, %s, %s, %s)", txb_state_name(states[0]),
		   txb_state_name(states[1]), txb_state_name(states[2]),
		   txb_state_name(states[3]));

	/* Without a timeout it waits for the running one. */
	memset(&wt, 0, sizeof(wt));
	memset(states, 0, sizeof(states));
	wt.conn = w;
	wt.tokens = tokens;
	wt.states = states;
	wt.n = 4;
	wt.timeout_ms = -1;
	wt.rc = -2;
	if (!waiter_start(&wt))
		return;
	tap_ok(await_blocked(PQbackendPID(w), r),
		   "wait_all blocks on the running transaction");
	exec_ok(p2, "ROLLBACK");
	pthread_join(wt.thread, NULL);
	tap_is_int(wt.rc, 0, "wait_all returns once it ended");
	tap_ok(states[0] == TXB_COMMITTED && states[1] == TXB_ABORTED &&
		   states[2] == TXB_ABORTED && states[3] == TXB_COMMITTED,
		   "wait_all states: committed, aborted, aborted, committed");

	/* Many tokens in one call. */
	many = calloc(2000, sizeof(txb_token));
	many_states = calloc(2000, sizeof(txb_state));
	if (many == NULL || many_states == NULL)
	{
		tap_ok(0, "setup: calloc");
		free(many);
		free(many_states);
		return;
	}
	for (i = 0; i < 2000; i++)
		many[i] = c;
	tap_is_int(txb_wait_all(w, many, many_states, 2000, -1), 0,
			   "wait_all of 2000 tokens");
	for (i = 0; i < 2000; i++)
		all_committed &= many_states[i] == TXB_COMMITTED;
	tap_ok(all_committed, "... all 2000 committed");
	free(many);
	free(many_states);
}

static void
test_async(PGconn *p, PGconn *w)
{
	txb_token	t = 0;
	int			ready;

	if (!produce(p, &t))
		return;
	tap_is_int(txb_wait_send(w, t, -1), 0, "wait_send queues the wait");
	tap_ok(await_blocked(PQbackendPID(w), t),
		   "the sent wait blocks on the producer's transaction");
	tap_is_int(txb_poll(w), TXB_POLL_READING,
			   "poll while the producer is open: not ready");
	tap_is_int(txb_status(w, t), TXB_ERROR,
			   "another call on the busy connection fails");
	tap_is_int(txb_error_code(), TXB_ERR_BUSY, "... TXB_ERR_BUSY");
	tap_is_int(txb_wait_send(w, t, -1), -1, "a second wait_send fails too");
	exec_ok(p, "COMMIT");
	ready = await_ready(w, DEADLINE_S);
	tap_is_int(ready, 1, "poll says ready after the producer's COMMIT");
	tap_is_int(txb_wait_result(w), TXB_COMMITTED, "wait_result: committed");
	tap_is_int(PQtransactionStatus(w), PQTRANS_IDLE,
			   "connection idle after the result");
	tap_is_int(txb_status(w, t), TXB_COMMITTED, "connection usable again");

	/* wait_all: first commit, then abort; ready only after both. */
	{
		txb_token	tk[2] = {0, 0};
		txb_state	st[2] = {TXB_ERROR, TXB_ERROR};
		PGconn	   *p2 = connect_db(conninfo);

		if (!produce(p, &tk[0]) || !produce(p2, &tk[1]))
		{
			PQfinish(p2);
			return;
		}
		tap_is_int(txb_wait_all_send(w, tk, 2, -1), 0, "wait_all_send");
		tap_ok(await_blocked(PQbackendPID(w), tk[0]),
			   "wait_all blocks on the first transaction");
		exec_ok(p, "COMMIT");
		tap_ok(await_blocked(PQbackendPID(w), tk[1]),
			   "after its COMMIT it blocks on the second");
		tap_is_int(txb_poll(w), TXB_POLL_READING,
				   "not ready while the second is open");
		exec_ok(p2, "ROLLBACK");
		tap_is_int(await_ready(w, DEADLINE_S), 1,
				   "ready after the second ended");
		tap_is_int(txb_wait_all_result(w, st, 2), 0, "wait_all_result");
		tap_ok(st[0] == TXB_COMMITTED && st[1] == TXB_ABORTED,
			   "wait_all_result states: committed, aborted");
		PQfinish(p2);
	}

	/* With a timeout. */
	if (!produce(p, &t))
		return;
	tap_is_int(txb_wait_send(w, t, 100), 0, "wait_send with a timeout");
	tap_is_int(await_ready(w, DEADLINE_S), 1, "ready after the timeout");
	tap_is_int(txb_wait_result(w), TXB_IN_PROGRESS, "result: in progress");
	exec_ok(p, "ROLLBACK");

	/* Result collected with the wrong function. */
	if (!produce(p, &t))
		return;
	exec_ok(p, "COMMIT");
	{
		txb_state	st[1];

		tap_is_int(txb_wait_send(w, t, -1), 0, "wait_send ...");
		tap_is_int(txb_wait_all_result(w, st, 1), -1,
				   "... collected by wait_all_result fails");
		tap_is_int(txb_error_code(), TXB_ERR_PROTOCOL, "... TXB_ERR_PROTOCOL");
		tap_is_int(PQtransactionStatus(w), PQTRANS_IDLE,
				   "... and leaves the connection idle");
	}
}

static void
test_async_nonblocking(PGconn *p, PGconn *w)
{
	txb_token	t = 0;

	if (!produce(p, &t))
		return;
	if (PQsetnonblocking(w, 1) != 0)
	{
		tap_ok(0, "setup: PQsetnonblocking");
		return;
	}
	tap_is_int(txb_wait_send(w, t, -1), 0,
			   "wait_send on a nonblocking connection");
	tap_ok(await_blocked(PQbackendPID(w), t), "... blocks on the producer");
	exec_ok(p, "COMMIT");
	tap_is_int(await_ready(w, DEADLINE_S), 1, "... ready after COMMIT");
	tap_is_int(txb_wait_result(w), TXB_COMMITTED, "... committed");
	tap_is_int(txb_status(w, t), TXB_COMMITTED,
			   "blocking calls work on a nonblocking connection");
	PQsetnonblocking(w, 0);
}

/* One thread waits on several connections with poll(). */
static void
test_async_many(void)
{
	enum
	{
		N = 4
	};
	PGconn	   *prod[N];
	PGconn	   *wait[N];
	txb_token	t[N];
	txb_state	st[N];
	int			done[N];
	int			i;
	int			ok = 1;
	int			order_ok = 1;

	for (i = 0; i < N; i++)
	{
		prod[i] = connect_db(conninfo);
		wait[i] = connect_db(conninfo);
		done[i] = 0;
		st[i] = TXB_ERROR;
		if (!produce(prod[i], &t[i]) || txb_wait_send(wait[i], t[i], -1) != 0)
			ok = 0;
	}
	tap_ok(ok, "%d waits sent on %d connections", N, N);
	for (i = 0; i < N && ok; i++)
		ok = await_blocked(PQbackendPID(wait[i]), t[i]);
	tap_ok(ok, "all %d waits block", N);

	/* End the transactions in reverse order; odd ones abort. */
	for (i = N - 1; i >= 0 && ok; i--)
	{
		double		deadline = now_s() + DEADLINE_S;
		int			k;

		exec_ok(prod[i], (i % 2) ? "ROLLBACK" : "COMMIT");
		/* Event loop until connection i is ready. */
		while (!done[i] && now_s() < deadline)
		{
			struct pollfd pfd[N];

			for (k = 0; k < N; k++)
			{
				pfd[k].fd = done[k] ? -1 : PQsocket(wait[k]);
				pfd[k].events = POLLIN;
				pfd[k].revents = 0;
			}
			(void) poll(pfd, N, 1000);
			for (k = 0; k < N; k++)
			{
				if (done[k] || !(pfd[k].revents & POLLIN))
					continue;
				if (txb_poll(wait[k]) != TXB_POLL_READING)
				{
					st[k] = txb_wait_result(wait[k]);
					done[k] = 1;
					if (k != i)
						order_ok = 0;
				}
			}
		}
	}
	tap_ok(order_ok, "each wait became ready only when its producer ended");
	tap_ok(st[0] == TXB_COMMITTED && st[1] == TXB_ABORTED &&
		   st[2] == TXB_COMMITTED && st[3] == TXB_ABORTED,
		   "one thread collected all %d outcomes", N);
	for (i = 0; i < N; i++)
	{
		PQfinish(prod[i]);
		PQfinish(wait[i]);
	}
}

static void
test_cancel(PGconn *p, PGconn *w)
{
	txb_token	t = 0;

	if (!produce(p, &t))
		return;
	tap_is_int(txb_wait_send(w, t, -1), 0, "wait_send before a cancel");
	tap_ok(await_blocked(PQbackendPID(w), t), "... blocks");
	tap_is_int(txb_cancel(w), 0, "txb_cancel delivers the request");
	tap_is_int(await_ready(w, DEADLINE_S), 1, "... the wait ends");
	tap_is_int(txb_wait_result(w), TXB_ERROR, "... with TXB_ERROR");
	tap_is_int(txb_error_code(), TXB_ERR_SERVER, "... TXB_ERR_SERVER");
	tap_is_str(txb_error_sqlstate(), "57014", "... SQLSTATE 57014");
	tap_ok(PQerrorMessage(w)[0] != '\0', "PQerrorMessage has the server's "
		   "message: %s", txb_error_message());
	tap_is_int(txb_status(w, t), TXB_IN_PROGRESS,
			   "connection usable after the cancel");
	exec_ok(p, "COMMIT");
}

static void
test_server_errors(PGconn *p, PGconn *w)
{
	txb_token	t = 0;
	txb_token	tokens[2];
	txb_state	states[2];

	tap_is_int(txb_status(w, UINT64_MAX), TXB_ERROR,
			   "status of a token in the future fails");
	tap_is_int(txb_error_code(), TXB_ERR_SERVER, "... TXB_ERR_SERVER");
	tap_is_str(txb_error_sqlstate(), "22023", "... SQLSTATE 22023");
	tap_ok(strlen(txb_error_message()) > 0 &&
		   strchr(txb_error_message(), '\n') == NULL,
		   "... one-line message: %s", txb_error_message());
	tap_ok(PQerrorMessage(w)[0] != '\0', "... PQerrorMessage is set too");
	tap_is_int(txb_wait(w, 0, -1), TXB_ERROR, "wait on token 0 fails");
	tap_is_str(txb_error_sqlstate(), "22023", "... SQLSTATE 22023");
	tap_is_int(txb_wait(w, UINT64_MAX, 10), TXB_ERROR,
			   "wait on a future token fails instead of hanging");

	if (!produce(p, &t))
		return;
	exec_ok(p, "COMMIT");
	tokens[0] = t;
	tokens[1] = UINT64_MAX;
	tap_is_int(txb_wait_all(w, tokens, states, 2, -1), -1,
			   "wait_all with one bad token fails");
	tap_is_str(txb_error_sqlstate(), "22023", "... SQLSTATE 22023");
	tap_is_int(PQtransactionStatus(w), PQTRANS_IDLE,
			   "an autocommit error leaves the connection idle");

	/* Inside an explicit transaction the error fails the transaction. */
	exec_ok(w, "BEGIN");
	tap_is_int(txb_status(w, UINT64_MAX), TXB_ERROR,
			   "server error inside a transaction");
	tap_is_int(PQtransactionStatus(w), PQTRANS_INERROR,
			   "... the transaction is failed");
	tap_is_int(txb_status(w, t), TXB_ERROR,
			   "a call in the failed transaction fails");
	tap_is_int(txb_error_code(), TXB_ERR_TRANSACTION, "... TXB_ERR_TRANSACTION");
	tap_ok(strstr(txb_error_message(), "failed transaction") != NULL,
		   "... message: %s", txb_error_message());
	tap_is_str(txb_error_sqlstate(), "", "... no SQLSTATE (not from server)");
	tap_is_int(txb_enqueue(w, &t), -1, "enqueue in the failed transaction");
	tap_is_int(txb_wait_send(w, t, 0), -1, "wait_send in the failed transaction");
	exec_ok(w, "ROLLBACK");
	tap_is_int(txb_status(w, t), TXB_COMMITTED, "works again after ROLLBACK");

	/* A failed transaction of the application's own making. */
	exec_ok(w, "BEGIN");
	{
		PGresult   *res = PQexec(w, "SELECT 1/0");

		PQclear(res);
	}
	tap_is_int(txb_wait(w, t, -1), TXB_ERROR,
			   "wait after the application's own failed statement");
	tap_is_int(txb_error_code(), TXB_ERR_TRANSACTION, "... TXB_ERR_TRANSACTION");
	exec_ok(w, "ROLLBACK");
}

static void
test_own_transaction(PGconn *p)
{
	txb_token	t = 0;
	int			ready;
	txb_state	st;

	if (!produce(p, &t))
		return;
	tap_is_int(txb_wait_send(p, t, -1), 0,
			   "wait on the caller's own transaction is sent");
	ready = await_ready(p, 30.0);
	tap_is_int(ready, 1, "... and returns instead of waiting on itself");
	if (ready != 1)
	{
		(void) txb_cancel(p);
		(void) await_ready(p, DEADLINE_S);
	}
	st = txb_wait_result(p);
	tap_ok(st == TXB_IN_PROGRESS || st == TXB_ERROR,
		   "... it is in progress or an error, not an outcome (%s)",
		   txb_state_name(st));
	exec_ok(p, "ROLLBACK");
}

static void
test_savepoints(PGconn *p, PGconn *w)
{
	txb_token	t = 0;
	txb_token	top = 0;

	exec_ok(p, "BEGIN");
	(void) txb_enqueue(p, &top);
	exec_ok(p, "SAVEPOINT s");
	tap_is_int(txb_enqueue(p, &t), 0, "enqueue inside a savepoint");
	tap_ok(t != top, "the savepoint's token differs from the top level's");
	exec_ok(p, "ROLLBACK TO SAVEPOINT s");
	exec_ok(p, "COMMIT");
	tap_is_int(txb_wait(w, t, -1), TXB_ABORTED,
			   "rolled-back savepoint: aborted although the top committed");
	tap_is_int(txb_wait(w, top, -1), TXB_COMMITTED,
			   "the top level's token: committed");

	exec_ok(p, "BEGIN");
	exec_ok(p, "SAVEPOINT s");
	(void) txb_enqueue(p, &t);
	exec_ok(p, "RELEASE SAVEPOINT s");
	{
		waiter		wt;

		memset(&wt, 0, sizeof(wt));
		wt.conn = w;
		wt.token = t;
		wt.timeout_ms = -1;
		if (!waiter_start(&wt))
			return;
		tap_ok(await_blocked(PQbackendPID(w), 0),
			   "wait on a released savepoint's token blocks");
		exec_ok(p, "COMMIT");
		pthread_join(wt.thread, NULL);
		tap_is_int(wt.state, TXB_COMMITTED,
				   "released savepoint follows the top level: committed");
	}
}

static void
test_prepared(PGconn *p, PGconn *w)
{
	txb_token	t = 0;

	PQclear(PQexec(p, "ROLLBACK PREPARED 'txb_client_test'")); /* leftover */
	if (!produce(p, &t))
		return;
	if (!exec_ok(p, "PREPARE TRANSACTION 'txb_client_test'"))
		return;
	tap_is_int(txb_status(w, t), TXB_IN_PROGRESS,
			   "a prepared transaction is in progress");
	tap_is_int(txb_wait_send(w, t, -1), 0, "wait on a prepared transaction");
	tap_ok(await_blocked(PQbackendPID(w), t), "... blocks");
	exec_ok(p, "COMMIT PREPARED 'txb_client_test'");
	tap_is_int(await_ready(w, DEADLINE_S), 1, "... ready after COMMIT PREPARED");
	tap_is_int(txb_wait_result(w), TXB_COMMITTED, "... committed");
}

static void
test_connection_lost(PGconn *p)
{
	PGconn	   *w = connect_db(conninfo);
	txb_token	t = 0;
	char		sql[64];
	txb_state	st;

	if (!produce(p, &t))
	{
		PQfinish(w);
		return;
	}
	tap_is_int(txb_wait_send(w, t, -1), 0, "wait_send before the backend dies");
	tap_ok(await_blocked(PQbackendPID(w), t), "... blocks");
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)",
			 PQbackendPID(w));
	exec_ok(mon, sql);
	(void) await_ready(w, DEADLINE_S);
	st = txb_wait_result(w);
	tap_is_int(st, TXB_ERROR, "a terminated waiter yields TXB_ERROR");
	tap_ok(txb_error_code() == TXB_ERR_CONNECTION ||
		   txb_error_code() == TXB_ERR_SERVER,
		   "... connection or server error: %s", txb_error_message());
	tap_is_int(txb_status(w, t), TXB_ERROR, "the lost connection fails cleanly");
	tap_is_int(txb_error_code(), TXB_ERR_CONNECTION, "... TXB_ERR_CONNECTION");
	exec_ok(p, "COMMIT");
	PQfinish(w);
}

static void
test_pipeline(PGconn *w)
{
#ifdef LIBPQ_HAS_PIPELINING
	if (PQenterPipelineMode(w) != 1)
	{
		tap_ok(0, "setup: PQenterPipelineMode");
		return;
	}
	tap_is_int(txb_status(w, 5), TXB_ERROR, "pipeline mode is refused");
	tap_is_int(txb_error_code(), TXB_ERR_BUSY, "... TXB_ERR_BUSY");
	PQexitPipelineMode(w);
#else
	(void) w;
#endif
}

static void
test_no_extension(const char *info)
{
	PGconn	   *c;
	txb_token	t = 0;

	if (info == NULL || info[0] == '\0')
	{
		printf("ok %d # SKIP TXB_TEST_NOEXT_CONNINFO not set\n", ++tap_count);
		return;
	}
	c = connect_db(info);
	tap_is_int(txb_status(c, 5), TXB_ERROR,
			   "status in a database without the extension fails");
	tap_is_int(txb_error_code(), TXB_ERR_NO_EXTENSION,
			   "... TXB_ERR_NO_EXTENSION");
	tap_is_str(txb_error_sqlstate(), "42883", "... SQLSTATE 42883");
	tap_ok(strstr(txb_error_message(), "CREATE EXTENSION tx_barrier") != NULL,
		   "... message names the fix: %s", txb_error_message());
	tap_is_int(txb_enqueue(c, &t), -1, "enqueue there fails too");
	tap_is_int(txb_error_code(), TXB_ERR_NO_EXTENSION,
			   "... TXB_ERR_NO_EXTENSION");
	tap_is_int(txb_wait_send(c, 5, -1), 0, "an async wait is sent ...");
	tap_is_int(await_ready(c, DEADLINE_S), 1, "... answered ...");
	tap_is_int(txb_wait_result(c), TXB_ERROR, "... and fails");
	tap_is_int(txb_error_code(), TXB_ERR_NO_EXTENSION,
			   "... TXB_ERR_NO_EXTENSION");
	PQfinish(c);
}

int
main(void)
{
	const char *env = getenv("TXB_TEST_CONNINFO");
	PGconn	   *p;
	PGconn	   *p2;
	PGconn	   *w;

	if (env != NULL)
		conninfo = env;

	test_tokens();
	test_thread_local_errors();
	test_bad_connections();

	mon = connect_db(conninfo);
	p = connect_db(conninfo);
	p2 = connect_db(conninfo);
	w = connect_db(conninfo);

	test_argument_errors(w);
	test_enqueue_status(p, w);
	test_blocking_wait(p, w, 1);
	test_blocking_wait(p, w, 0);
	test_timeout(p, w);
	test_wait_all(p, p2, w);
	test_async(p, w);
	test_async_nonblocking(p, w);
	test_async_many();
	test_cancel(p, w);
	test_server_errors(p, w);
	test_own_transaction(p);
	test_savepoints(p, w);
	test_prepared(p, w);
	test_connection_lost(p);
	test_pipeline(w);
	test_no_extension(getenv("TXB_TEST_NOEXT_CONNINFO"));

	PQfinish(w);
	PQfinish(p2);
	PQfinish(p);
	PQfinish(mon);
	return tap_done();
}
