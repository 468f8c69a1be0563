/*
 * tx_barrier.c - libtxbarrier: calls the tx_barrier SQL functions through
 * libpq.  See tx_barrier.h for the contract of every function.
 */
#include "tx_barrier.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TXB_API __attribute__((visibility("default")))

/* SQLSTATEs the library treats specially. */
#define SQLSTATE_UNDEFINED_FUNCTION "42883"
#define SQLSTATE_UNDEFINED_OBJECT "42704"

/* The statements.  The functions are found through search_path. */
#define SQL_ENQUEUE "SELECT barrier_enqueue()"
#define SQL_STATUS "SELECT barrier_status($1::xid8)"
#define SQL_WAIT "SELECT barrier_wait($1::xid8, $2::interval)"
#define SQL_WAIT_ALL \
	"SELECT token, state FROM barrier_wait_all($1::xid8[], $2::interval)"

/* Room for the text of a timeout: "-2147483648 milliseconds". */
#define TIMEOUT_BUFSIZE 32

/* ----------------------------------------------------------------------
 * Per-thread error record
 * ---------------------------------------------------------------------- */

typedef struct txb_errrec
{
	txb_error	code;
	char		sqlstate[6];
	char		message[1024];
} txb_errrec;

static _Thread_local txb_errrec errrec;

static void
clear_error(void)
{
	errrec.code = TXB_ERR_NONE;
	errrec.sqlstate[0] = '\0';
	errrec.message[0] = '\0';
}

/* Makes the message one line: newlines inside become spaces, trailing
 * whitespace goes. */
static void
tidy_message(void)
{
	size_t		len = strlen(errrec.message);
	size_t		i;

	while (len > 0 && (errrec.message[len - 1] == '\n' ||
					   errrec.message[len - 1] == '\r' ||
					   errrec.message[len - 1] == ' ' ||
					   errrec.message[len - 1] == '\t'))
		errrec.message[--len] = '\0';
	for (i = 0; i < len; i++)
		if (errrec.message[i] == '\n' || errrec.message[i] == '\r')
			errrec.message[i] = ' ';
}

static void set_error(txb_error code, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

static void
set_error(txb_error code, const char *fmt,...)
{
	va_list		ap;

	errrec.code = code;
	errrec.sqlstate[0] = '\0';
	va_start(ap, fmt);
	(void) vsnprintf(errrec.message, sizeof(errrec.message), fmt, ap);
	va_end(ap);
	tidy_message();
}

/* libpq's own message for conn, never NULL. */
static const char *
conn_message(const PGconn *conn)
{
	const char *msg = conn ? PQerrorMessage(conn) : NULL;

	return (msg && msg[0]) ? msg : "no message from libpq";
}

/* Copies at most 32 bytes of arbitrary text into out, printable ASCII only,
 * for quoting user input in a message. */
static void
quote_input(const char *text, char *out, size_t outlen)
{
	size_t		i = 0;
	size_t		max = outlen - 1;

	if (max > 32)
		max = 32;
	while (i < max && text[i] != '\0')
	{
		char		c = text[i];

		if ((unsigned char) c < 0x20 || (unsigned char) c >= 0x7f)
			c = '?';
		out[i] = c;
		i++;
	}
	out[i] = '\0';
	if (text[i] != '\0' && i >= 3)
	{
		out[i - 3] = '.';
		out[i - 2] = '.';
		out[i - 1] = '.';
	}
}

/* ----------------------------------------------------------------------
 * Connection checks and result handling
 * ---------------------------------------------------------------------- */

/* Whether conn can run a statement now.  0 if so, -1 and an error if not. */
static int
check_conn(PGconn *conn)
{
	if (conn == NULL)
	{
		set_error(TXB_ERR_CONNECTION, "connection is NULL");
		return -1;
	}
	if (PQstatus(conn) != CONNECTION_OK)
	{
		set_error(TXB_ERR_CONNECTION, "connection is not open: %s",
				  conn_message(conn));
		return -1;
	}
#ifdef LIBPQ_HAS_PIPELINING
	if (PQpipelineStatus(conn) != PQ_PIPELINE_OFF)
	{
		set_error(TXB_ERR_BUSY,
				  "connection is in pipeline mode, which is not supported");
		return -1;
	}
#endif
	switch (PQtransactionStatus(conn))
	{
		case PQTRANS_IDLE:
		case PQTRANS_INTRANS:
			return 0;
		case PQTRANS_INERROR:
			set_error(TXB_ERR_TRANSACTION,
					  "connection is in a failed transaction: "
					  "roll it back first");
			return -1;
		case PQTRANS_ACTIVE:
			set_error(TXB_ERR_BUSY,
					  "connection is busy: a command is in progress "
					  "(collect its result first)");
			return -1;
		case PQTRANS_UNKNOWN:
		default:
			set_error(TXB_ERR_CONNECTION, "connection is bad: %s",
					  conn_message(conn));
			return -1;
	}
}

/* Records the error of a failed result (res may be NULL). */
static void
set_result_error(PGconn *conn, const PGresult *res)
{
	const char *sqlstate = NULL;
	const char *primary = NULL;

	if (res != NULL)
	{
		sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	}

	if (res == NULL || sqlstate == NULL)
	{
		/* libpq's own failure: out of memory, or the connection broke. */
		if (conn != NULL && PQstatus(conn) != CONNECTION_OK)
			set_error(TXB_ERR_CONNECTION, "connection lost: %s",
					  conn_message(conn));
		else if (res == NULL)
			set_error(TXB_ERR_NO_MEMORY, "no result from libpq: %s",
					  conn_message(conn));
		else
			set_error(TXB_ERR_CONNECTION, "%s",
					  primary ? primary : PQresultErrorMessage(res));
		return;
	}

	if (strcmp(sqlstate, SQLSTATE_UNDEFINED_FUNCTION) == 0 ||
		strcmp(sqlstate, SQLSTATE_UNDEFINED_OBJECT) == 0)
		set_error(TXB_ERR_NO_EXTENSION,
				  "the tx_barrier functions are not available in database "
				  "\"%s\" (is the extension installed? CREATE EXTENSION "
				  "tx_barrier): %s",
				  PQdb(conn) ? PQdb(conn) : "", primary ? primary : "");
	else
		set_error(TXB_ERR_SERVER, "%s",
				  primary ? primary : PQresultErrorMessage(res));
	(void) snprintf(errrec.sqlstate, sizeof(errrec.sqlstate), "%s", sqlstate);
}

/*
 * Checks that res is a successful SELECT returning nfields columns.
 * Returns 0, or -1 after recording the error.
 */
static int
check_tuples(PGconn *conn, const PGresult *res, int nfields)
{
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		if (res != NULL && PQresultStatus(res) != PGRES_FATAL_ERROR &&
			PQresultStatus(res) != PGRES_NONFATAL_ERROR)
			set_error(TXB_ERR_PROTOCOL, "unexpected result status %s",
					  PQresStatus(PQresultStatus(res)));
		else
			set_result_error(conn, res);
		return -1;
	}
	if (PQnfields(res) != nfields)
	{
		set_error(TXB_ERR_PROTOCOL,
				  "unexpected result: %d columns where %d were expected "
				  "(was the result collected with the right function?)",
				  PQnfields(res), nfields);
		return -1;
	}
	return 0;
}

/* The state named by a barrier_state label. */
static txb_state
parse_state(const PGresult *res, int row, int col)
{
	const char *label;

	if (PQgetisnull(res, row, col))
	{
		set_error(TXB_ERR_PROTOCOL, "the server returned no state (NULL)");
		return TXB_ERROR;
	}
	label = PQgetvalue(res, row, col);
	if (strcmp(label, "committed") == 0)
		return TXB_COMMITTED;
	if (strcmp(label, "aborted") == 0)
		return TXB_ABORTED;
	if (strcmp(label, "in progress") == 0)
		return TXB_IN_PROGRESS;
	set_error(TXB_ERR_PROTOCOL, "the server returned an unknown state \"%.64s\"",
			  label);
	return TXB_ERROR;
}

/* The state in the single row of a barrier_status/barrier_wait result. */
static txb_state
single_state(PGconn *conn, const PGresult *res)
{
	if (check_tuples(conn, res, 1) < 0)
		return TXB_ERROR;
	if (PQntuples(res) != 1)
	{
		set_error(TXB_ERR_PROTOCOL, "unexpected result: %d rows instead of 1",
				  PQntuples(res));
		return TXB_ERROR;
	}
	return parse_state(res, 0, 0);
}

/*
 * Stores the states of a barrier_wait_all result into states[0..n-1].  If
 * tokens is not NULL, checks that the rows name them in order.
 */
static int
all_states(PGconn *conn, const PGresult *res, const txb_token *tokens,
		   txb_state *states, size_t n)
{
	size_t		i;

	if (check_tuples(conn, res, 2) < 0)
		return -1;
	if ((size_t) PQntuples(res) != n)
	{
		set_error(TXB_ERR_PROTOCOL,
				  "unexpected result: %d rows for %zu tokens",
				  PQntuples(res), n);
		return -1;
	}
	for (i = 0; i < n; i++)
	{
		txb_token	got;

		if (tokens != NULL &&
			(PQgetisnull(res, (int) i, 0) ||
			 txb_token_parse(PQgetvalue(res, (int) i, 0), &got) < 0 ||
			 got != tokens[i]))
		{
			set_error(TXB_ERR_PROTOCOL,
					  "unexpected result: row %zu does not name token %zu",
					  i + 1, i + 1);
			return -1;
		}
		states[i] = parse_state(res, (int) i, 1);
		if (states[i] == TXB_ERROR)
			return -1;
	}
	return 0;
}

/* Text of a timeout parameter, or NULL for "no limit". */
static const char *
timeout_param(int timeout_ms, char *buf)
{
	if (timeout_ms < 0)
		return NULL;
	(void) snprintf(buf, TIMEOUT_BUFSIZE, "%d milliseconds", timeout_ms);
	return buf;
}

/* Builds the array literal "{t1,t2,...}" for n tokens; NULL on error. */
static char *
token_array(const txb_token *tokens, size_t n)
{
	char	   *buf;
	size_t		pos = 0;
	size_t		i;

	if (n > 0 && tokens == NULL)
	{
		set_error(TXB_ERR_ARGUMENT, "tokens is NULL");
		return NULL;
	}
	if (n > (size_t) INT_MAX)
	{
		set_error(TXB_ERR_ARGUMENT, "too many tokens (%zu)", n);
		return NULL;
	}
	buf = malloc(n * (TXB_TOKEN_MAXLEN + 1) + 3);
	if (buf == NULL)
	{
		set_error(TXB_ERR_NO_MEMORY, "out of memory for %zu tokens", n);
		return NULL;
	}
	buf[pos++] = '{';
	for (i = 0; i < n; i++)
	{
		if (i > 0)
			buf[pos++] = ',';
		pos += (size_t) txb_token_format(tokens[i], buf + pos,
										 TXB_TOKEN_BUFSIZE);
	}
	buf[pos++] = '}';
	buf[pos] = '\0';
	return buf;
}

/* Collects the one result of an asynchronous query and drains the rest, so
 * the connection is idle afterwards.  NULL (and an error) if nothing was
 * sent. */
static PGresult *
collect(PGconn *conn)
{
	PGresult   *res;
	PGresult   *extra;

	res = PQgetResult(conn);
	if (res == NULL)
	{
		if (PQstatus(conn) != CONNECTION_OK)
			set_error(TXB_ERR_CONNECTION, "connection lost: %s",
					  conn_message(conn));
		else
			set_error(TXB_ERR_ARGUMENT,
					  "no result to collect: no wait was sent");
		return NULL;
	}
	while ((extra = PQgetResult(conn)) != NULL)
	{
		/* Keep the first error if a later result failed. */
		if (PQresultStatus(res) == PGRES_TUPLES_OK &&
			PQresultStatus(extra) != PGRES_TUPLES_OK)
		{
			PQclear(res);
			res = extra;
		}
		else
			PQclear(extra);
	}
	return res;
}

/* ----------------------------------------------------------------------
 * Producer
 * ---------------------------------------------------------------------- */

TXB_API int
txb_enqueue(PGconn *conn, txb_token *token)
{
	PGresult   *res;
	txb_token	value;
	int			rc = -1;

	clear_error();
	if (token == NULL)
	{
		set_error(TXB_ERR_ARGUMENT, "token is NULL");
		return -1;
	}
	if (check_conn(conn) < 0)
		return -1;
	res = PQexecParams(conn, SQL_ENQUEUE, 0, NULL, NULL, NULL, NULL, 0);
	if (check_tuples(conn, res, 1) == 0)
	{
		if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
			set_error(TXB_ERR_PROTOCOL,
					  "barrier_enqueue() returned no token");
		else if (txb_token_parse(PQgetvalue(res, 0, 0), &value) < 0)
			set_error(TXB_ERR_PROTOCOL,
					  "barrier_enqueue() returned a malformed token");
		else
		{
			*token = value;
			rc = 0;
		}
	}
	PQclear(res);
	return rc;
}

/* ----------------------------------------------------------------------
 * Worker: blocking calls
 * ---------------------------------------------------------------------- */

/*
 * Runs a query that takes a token (and, if nparams is 2, a timeout, NULL
 * for no limit) and returns one barrier_state: the blocking status and
 * wait calls.
 */
static txb_state
exec_single(PGconn *conn, const char *sql, int nparams, txb_token token,
			const char *timeout)
{
	char		tokbuf[TXB_TOKEN_BUFSIZE];
	const char *params[2];
	PGresult   *res;
	txb_state	state;

	clear_error();
	if (check_conn(conn) < 0)
		return TXB_ERROR;
	(void) txb_token_format(token, tokbuf, sizeof(tokbuf));
	params[0] = tokbuf;
	params[1] = timeout;
	res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	state = single_state(conn, res);
	PQclear(res);
	return state;
}

TXB_API txb_state
txb_status(PGconn *conn, txb_token token)
{
	return exec_single(conn, SQL_STATUS, 1, token, NULL);
}

TXB_API txb_state
txb_wait(PGconn *conn, txb_token token, int timeout_ms)
{
	char		tmbuf[TIMEOUT_BUFSIZE];

	return exec_single(conn, SQL_WAIT, 2, token,
					   timeout_param(timeout_ms, tmbuf));
}

TXB_API int
txb_wait_all(PGconn *conn, const txb_token *tokens, txb_state *states,
			 size_t n, int timeout_ms)
{
	char		tmbuf[TIMEOUT_BUFSIZE];
	const char *params[2];
	char	   *array;
	PGresult   *res;
	int			rc;

	clear_error();
	if (n > 0 && states == NULL)
	{
		set_error(TXB_ERR_ARGUMENT, "states is NULL");
		return -1;
	}
	if (check_conn(conn) < 0)
		return -1;
	array = token_array(tokens, n);
	if (array == NULL)
		return -1;
	params[0] = array;
	params[1] = timeout_param(timeout_ms, tmbuf);
	res = PQexecParams(conn, SQL_WAIT_ALL, 2, NULL, params, NULL, NULL, 0);
	free(array);
	rc = all_states(conn, res, tokens, states, n);
	PQclear(res);
	return rc;
}

/*
 * Starts a call that only needs a connection object (no idle session):
 * clears the error record; false, with the error set, for a NULL conn.
 */
static bool
start_call(PGconn *conn)
{
	clear_error();
	if (conn == NULL)
	{
		set_error(TXB_ERR_CONNECTION, "connection is NULL");
		return false;
	}
	return true;
}

/* ----------------------------------------------------------------------
 * Worker: nonblocking calls
 * ---------------------------------------------------------------------- */

/* Sends a wait; 0 when it is on its way, -1 with the error set. */
static int
send_wait(PGconn *conn, const char *sql, const char *const *params)
{
	if (!PQsendQueryParams(conn, sql, 2, NULL, params, NULL, NULL, 0))
	{
		set_error(PQstatus(conn) == CONNECTION_OK ? TXB_ERR_BUSY :
				  TXB_ERR_CONNECTION, "could not send the wait: %s",
				  conn_message(conn));
		return -1;
	}
	return 0;
}

TXB_API int
txb_wait_send(PGconn *conn, txb_token token, int timeout_ms)
{
	char		tokbuf[TXB_TOKEN_BUFSIZE];
	char		tmbuf[TIMEOUT_BUFSIZE];
	const char *params[2];

	clear_error();
	if (check_conn(conn) < 0)
		return -1;
	(void) txb_token_format(token, tokbuf, sizeof(tokbuf));
	params[0] = tokbuf;
	params[1] = timeout_param(timeout_ms, tmbuf);
	return send_wait(conn, SQL_WAIT, params);
}

TXB_API int
txb_wait_all_send(PGconn *conn, const txb_token *tokens, size_t n,
				  int timeout_ms)
{
	char		tmbuf[TIMEOUT_BUFSIZE];
	const char *params[2];
	char	   *array;
	int			rc;

	clear_error();
	if (check_conn(conn) < 0)
		return -1;
	array = token_array(tokens, n);
	if (array == NULL)
		return -1;
	params[0] = array;
	params[1] = timeout_param(timeout_ms, tmbuf);
	rc = send_wait(conn, SQL_WAIT_ALL, params);
	free(array);
	return rc;
}

TXB_API txb_poll_status
txb_poll(PGconn *conn)
{
	int			unsent = 0;

	if (!start_call(conn))
		return TXB_POLL_FAILED;
	if (PQisnonblocking(conn))
	{
		unsent = PQflush(conn);
		if (unsent < 0)
		{
			set_error(TXB_ERR_CONNECTION, "could not send: %s",
					  conn_message(conn));
			return TXB_POLL_FAILED;
		}
	}
	if (!PQconsumeInput(conn))
	{
		set_error(TXB_ERR_CONNECTION, "could not read: %s",
				  conn_message(conn));
		return TXB_POLL_FAILED;
	}
	if (unsent > 0)
		return TXB_POLL_WRITING;
	return PQisBusy(conn) ? TXB_POLL_READING : TXB_POLL_READY;
}

TXB_API txb_state
txb_wait_result(PGconn *conn)
{
	PGresult   *res;
	txb_state	state;

	if (!start_call(conn))
		return TXB_ERROR;
	res = collect(conn);
	if (res == NULL)
		return TXB_ERROR;
	state = single_state(conn, res);
	PQclear(res);
	return state;
}

TXB_API int
txb_wait_all_result(PGconn *conn, txb_state *states, size_t n)
{
	PGresult   *res;
	int			rc;

	if (!start_call(conn))
		return -1;
	res = collect(conn);
	if (res == NULL)
		return -1;
	if (n > 0 && states == NULL)
	{
		set_error(TXB_ERR_ARGUMENT, "states is NULL");
		rc = -1;
	}
	else
		rc = all_states(conn, res, NULL, states, n);
	PQclear(res);
	return rc;
}

TXB_API int
txb_cancel(PGconn *conn)
{
	PGcancel   *cancel;
	char		errbuf[256];
	int			ok;

	if (!start_call(conn))
		return -1;
	cancel = PQgetCancel(conn);
	if (cancel == NULL)
	{
		set_error(TXB_ERR_CONNECTION, "cannot cancel: connection is not open");
		return -1;
	}
	errbuf[0] = '\0';
	ok = PQcancel(cancel, errbuf, (int) sizeof(errbuf));
	PQfreeCancel(cancel);
	if (!ok)
	{
		set_error(TXB_ERR_CONNECTION, "could not send the cancel request: %s",
				  errbuf);
		return -1;
	}
	return 0;
}

/* ----------------------------------------------------------------------
 * Tokens and states
 * ---------------------------------------------------------------------- */

TXB_API const char *
txb_state_name(txb_state state)
{
	switch (state)
	{
		case TXB_IN_PROGRESS:
			return "in progress";
		case TXB_COMMITTED:
			return "committed";
		case TXB_ABORTED:
			return "aborted";
		case TXB_ERROR:
			return "error";
	}
	return "unknown";
}

TXB_API int
txb_token_format(txb_token token, char *buf, size_t len)
{
	char		digits[TXB_TOKEN_MAXLEN];
	int			n = 0;
	int			i;

	clear_error();
	do
	{
		digits[n++] = (char) ('0' + (int) (token % 10));
		token /= 10;
	} while (token != 0);
	if (buf == NULL || len < (size_t) n + 1)
	{
		set_error(TXB_ERR_ARGUMENT,
				  "buffer for the token is NULL or shorter than %d bytes",
				  n + 1);
		return -1;
	}
	for (i = 0; i < n; i++)
		buf[i] = digits[n - 1 - i];
	buf[n] = '\0';
	return n;
}

TXB_API int
txb_token_parse(const char *text, txb_token *token)
{
	char		quoted[40];
	txb_token	value = 0;
	const char *p;

	clear_error();
	if (text == NULL || token == NULL)
	{
		set_error(TXB_ERR_ARGUMENT, "%s is NULL", text ? "token" : "text");
		return -1;
	}
	if (*text == '\0')
	{
		set_error(TXB_ERR_ARGUMENT, "malformed token: empty string");
		return -1;
	}
	for (p = text; *p != '\0'; p++)
	{
		unsigned	digit;

		if (*p < '0' || *p > '9')
		{
			quote_input(text, quoted, sizeof(quoted));
			set_error(TXB_ERR_ARGUMENT,
					  "malformed token \"%s\": only decimal digits are allowed",
					  quoted);
			return -1;
		}
		digit = (unsigned) (*p - '0');
		if (value > (UINT64_MAX - digit) / 10)
		{
			quote_input(text, quoted, sizeof(quoted));
			set_error(TXB_ERR_ARGUMENT,
					  "malformed token \"%s\": out of range for 64 bits",
					  quoted);
			return -1;
		}
		value = value * 10 + digit;
	}
	*token = value;
	return 0;
}

/* ----------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------- */

TXB_API txb_error
txb_error_code(void)
{
	return errrec.code;
}

TXB_API const char *
txb_error_message(void)
{
	return errrec.message;
}

TXB_API const char *
txb_error_sqlstate(void)
{
	return errrec.sqlstate;
}

TXB_API const char *
txb_version(void)
{
	return TXB_VERSION;
}

/* ----------------------------------------------------------------------
 * Shared waiter
 *
 * A state machine over one nonblocking connection: DOWN (no connection;
 * connect when tokens are pending and retry_at has passed), CONNECTING
 * (PQconnectPoll), IDLE, RUNNING (a sleeping barrier_wait_any() of every
 * pending token) and ISOLATING (statements that only look, to find the
 * token that failed a call).  Pending tokens live in an open-addressing
 * hash table; each remembers the statement (generation) it was last sent
 * in, so that a token added while a statement sleeps is recognised as new.
 * ---------------------------------------------------------------------- */

#include <poll.h>
#include <pthread.h>
#include <time.h>

#define SQL_WAIT_ANY \
	"SELECT token, state FROM barrier_wait_any($1::xid8[])"
#define SQL_LOOK_ANY \
	"SELECT token, state FROM barrier_wait_any($1::xid8[], interval '0')"

#define WAITER_RECONNECT_FIRST_MS 100
#define WAITER_RECONNECT_MAX_MS 10000
#define WAITER_CANCEL_DELAY_MS 10
#define WAITER_CANCEL_FIRST_MS 20
#define WAITER_CANCEL_MAX_MS 1000
#define WAITER_MESSAGE_LEN 256

typedef enum waiter_phase
{
	WAITER_DOWN,
	WAITER_CONNECTING,
	WAITER_IDLE,
	WAITER_RUNNING,
	WAITER_ISOLATING
} waiter_phase;

typedef struct waiter_slot
{
	txb_token	token;			/* 0: empty or deleted */
	unsigned char used;			/* 0 empty, 1 live, 2 deleted */
	unsigned long gen;			/* statement it was last sent in */
} waiter_slot;

typedef struct waiter_answer
{
	txb_token	token;
	txb_state	state;
	txb_error	code;			/* for TXB_ERROR */
	char		sqlstate[6];
	char		message[WAITER_MESSAGE_LEN];
} waiter_answer;

typedef struct waiter_part
{
	size_t		start;
	size_t		len;
} waiter_part;

struct txb_waiter
{
	char	   *conninfo;
	PGconn	   *conn;
	waiter_phase phase;
	bool		conn_wants_write;	/* CONNECTING: what PQconnectPoll asked */
	bool		ever_connected;
	int64_t		retry_at;		/* DOWN or IDLE: not before (ms) */
	int			delay_ms;		/* next reconnect delay */

	waiter_slot *slots;
	size_t		cap;			/* power of two */
	size_t		live;
	size_t		deleted;

	unsigned long gen;			/* statements sent */
	txb_token  *sent;			/* tokens of the statement in flight */
	size_t		nsent;
	size_t		sent_cap;

	bool		cancel_wanted;	/* a token is pending that RUNNING lacks */
	bool		cancel_sent;	/* ... and a cancel was requested for it */
	int64_t		cancel_next;	/* when to send the (next) cancel request */
	int			cancel_step_ms;

	waiter_part *parts;			/* ISOLATING: parts of sent[] to look at */
	size_t		nparts;
	size_t		parts_cap;

	waiter_answer *answers;		/* queue read by txb_waiter_next */
	size_t		ans_head;
	size_t		ans_len;
	size_t		ans_cap;

	unsigned long reconnects;
	unsigned long cancels;
	bool		oom;

	/*
	 * The canceller thread: PQcancel() blocks for a round trip to the
	 * server, so it runs there, never in txb_waiter_poll().  Under mu:
	 * c_cur is the PGcancel of the current connection (NULL while there is
	 * none), c_inuse the one the thread is sending with (freed by the
	 * thread if replaced meanwhile).
	 */
	bool		c_started;
	pthread_t	c_thread;
	pthread_mutex_t c_mu;
	pthread_cond_t c_cv;
	PGcancel   *c_cur;
	PGcancel   *c_inuse;
	bool		c_wanted;
	bool		c_stop;
};

static int64_t
waiter_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t
waiter_hash(txb_token token, size_t cap)
{
	uint64_t	h = token * UINT64_C(0x9E3779B97F4A7C15);

	return (size_t) (h >> 17) & (cap - 1);
}

/* The live slot of token, or NULL. */
static waiter_slot *
waiter_find(const txb_waiter *w, txb_token token)
{
	size_t		i;

	if (w->cap == 0)
		return NULL;
	for (i = waiter_hash(token, w->cap);; i = (i + 1) & (w->cap - 1))
	{
		waiter_slot *s = &w->slots[i];

		if (s->used == 0)
			return NULL;
		if (s->used == 1 && s->token == token)
			return s;
	}
}

static bool
waiter_rehash(txb_waiter *w, size_t cap)
{
	waiter_slot *old = w->slots;
	size_t		oldcap = w->cap;
	size_t		i;

	w->slots = calloc(cap, sizeof(waiter_slot));
	if (w->slots == NULL)
	{
		w->slots = old;
		return false;
	}
	w->cap = cap;
	w->deleted = 0;
	for (i = 0; i < oldcap; i++)
	{
		size_t		j;

		if (old[i].used != 1)
			continue;
		for (j = waiter_hash(old[i].token, cap); w->slots[j].used != 0;
			 j = (j + 1) & (cap - 1))
			;
		w->slots[j] = old[i];
	}
	free(old);
	return true;
}

/* Inserts token; the slot (new or existing), NULL when out of memory. */
static waiter_slot *
waiter_insert(txb_waiter *w, txb_token token, bool *added)
{
	waiter_slot *s = waiter_find(w, token);
	size_t		i;

	*added = false;
	if (s != NULL)
		return s;
	if ((w->live + w->deleted + 1) * 10 >= w->cap * 7)
	{
		size_t		cap = w->cap ? w->cap : 64;

		while ((w->live + 1) * 10 >= cap * 5)
			cap *= 2;
		if (!waiter_rehash(w, cap))
			return NULL;
	}
	for (i = waiter_hash(token, w->cap); w->slots[i].used == 1;
		 i = (i + 1) & (w->cap - 1))
		;
	if (w->slots[i].used == 2)
		w->deleted--;
	s = &w->slots[i];
	s->token = token;
	s->used = 1;
	s->gen = 0;
	w->live++;
	*added = true;
	return s;
}

static void
waiter_delete(txb_waiter *w, waiter_slot *s)
{
	s->used = 2;
	s->token = 0;
	w->live--;
	w->deleted++;
}

static bool
waiter_grow(void **array, size_t *cap, size_t need, size_t elem)
{
	size_t		ncap;
	void	   *p;

	if (need <= *cap)
		return true;
	ncap = *cap ? *cap : 16;
	while (ncap < need)
		ncap *= 2;
	p = realloc(*array, ncap * elem);
	if (p == NULL)
		return false;
	*array = p;
	*cap = ncap;
	return true;
}

/* Queues an answer for token and forgets it as pending. */
static void
waiter_answer_token(txb_waiter *w, waiter_slot *s, txb_state state,
					txb_error code, const char *sqlstate, const char *message)
{
	waiter_answer *a;

	if (w->ans_head > 0 && w->ans_head == w->ans_len)
		w->ans_head = w->ans_len = 0;
	if (!waiter_grow((void **) &w->answers, &w->ans_cap, w->ans_len + 1,
					 sizeof(waiter_answer)))
	{
		w->oom = true;			/* the token stays pending: asked again */
		return;
	}
	a = &w->answers[w->ans_len++];
	a->token = s->token;
	a->state = state;
	a->code = code;
	(void) snprintf(a->sqlstate, sizeof(a->sqlstate), "%s",
					sqlstate ? sqlstate : "");
	(void) snprintf(a->message, sizeof(a->message), "%s",
					message ? message : "");
	waiter_delete(w, s);
}

/* Queues the rows (token, state) of a barrier_wait_any() result. */
static void
waiter_take_rows(txb_waiter *w, const PGresult *res)
{
	int			n = PQntuples(res);
	int			i;

	for (i = 0; i < n; i++)
	{
		txb_token	token;
		waiter_slot *s;
		const char *label;

		if (PQgetisnull(res, i, 0) || PQgetisnull(res, i, 1) ||
			txb_token_parse(PQgetvalue(res, i, 0), &token) < 0)
			continue;
		s = waiter_find(w, token);
		if (s == NULL)
			continue;			/* removed meanwhile, or a duplicate row */
		label = PQgetvalue(res, i, 1);
		if (strcmp(label, "committed") == 0)
			waiter_answer_token(w, s, TXB_COMMITTED, TXB_ERR_NONE, NULL, NULL);
		else if (strcmp(label, "aborted") == 0)
			waiter_answer_token(w, s, TXB_ABORTED, TXB_ERR_NONE, NULL, NULL);
		else					/* only the caller's own transaction */
			waiter_answer_token(w, s, TXB_ERROR, TXB_ERR_PROTOCOL, NULL,
								"unexpected barrier state from barrier_wait_any()");
	}
}

/* Fails every still pending token of sent[start..start+len). */
static void
waiter_fail_sent(txb_waiter *w, size_t start, size_t len, txb_error code,
				 const char *sqlstate, const char *message)
{
	size_t		i;

	for (i = start; i < start + len && i < w->nsent; i++)
	{
		waiter_slot *s = waiter_find(w, w->sent[i]);

		if (s != NULL)
			waiter_answer_token(w, s, TXB_ERROR, code, sqlstate, message);
	}
}

static void *
waiter_canceller_main(void *arg)
{
	txb_waiter *w = arg;

	pthread_mutex_lock(&w->c_mu);
	for (;;)
	{
		PGcancel   *c;
		char		errbuf[256];

		while (!w->c_stop && !(w->c_wanted && w->c_cur != NULL))
			pthread_cond_wait(&w->c_cv, &w->c_mu);
		if (w->c_stop)
			break;
		c = w->c_cur;
		w->c_wanted = false;
		w->c_inuse = c;
		pthread_mutex_unlock(&w->c_mu);
		(void) PQcancel(c, errbuf, (int) sizeof(errbuf));
		pthread_mutex_lock(&w->c_mu);
		w->c_inuse = NULL;
		if (w->c_cur != c)
			PQfreeCancel(c);	/* the connection was replaced meanwhile */
	}
	pthread_mutex_unlock(&w->c_mu);
	return NULL;
}

/* Makes conn's cancel object the canceller's (conn NULL: none). */
static void
waiter_canceller_set(txb_waiter *w, PGconn *conn)
{
	PGcancel   *nc = conn ? PQgetCancel(conn) : NULL;
	PGcancel   *old;

	pthread_mutex_lock(&w->c_mu);
	old = w->c_cur;
	w->c_cur = nc;
	w->c_wanted = false;
	if (old != NULL && old != w->c_inuse)
		PQfreeCancel(old);
	pthread_mutex_unlock(&w->c_mu);
}

/* Asks for a cancel request; sends it here if there is no thread. */
static void
waiter_canceller_request(txb_waiter *w)
{
	if (!w->c_started)
		w->c_started = pthread_create(&w->c_thread, NULL,
									  waiter_canceller_main, w) == 0;
	pthread_mutex_lock(&w->c_mu);
	if (w->c_started)
	{
		w->c_wanted = true;
		pthread_cond_signal(&w->c_cv);
	}
	else if (w->c_cur != NULL)
	{
		char		errbuf[256];

		(void) PQcancel(w->c_cur, errbuf, (int) sizeof(errbuf));
	}
	pthread_mutex_unlock(&w->c_mu);
}

/* Drops the connection; connects again after the backoff delay. */
static void
waiter_lost(txb_waiter *w)
{
	waiter_canceller_set(w, NULL);
	if (w->conn != NULL)
		PQfinish(w->conn);
	w->conn = NULL;
	w->phase = WAITER_DOWN;
	w->cancel_wanted = false;
	w->nparts = 0;
	w->retry_at = waiter_now_ms() + w->delay_ms;
	w->delay_ms = w->delay_ms * 2 > WAITER_RECONNECT_MAX_MS ?
		WAITER_RECONNECT_MAX_MS : w->delay_ms * 2;
}

/*
 * Sends barrier_wait_any() (or, looking, its timeout-0 form) for the
 * tokens; false if it could not be sent (the connection is then lost).
 */
static bool
waiter_send(txb_waiter *w, const char *sql, const txb_token *tokens,
			size_t n)
{
	const char *params[1];
	char	   *array;
	bool		ok;

	array = token_array(tokens, n);
	if (array == NULL)
	{
		w->oom = true;
		return false;
	}
	params[0] = array;
	ok = PQsendQueryParams(w->conn, sql, 1, NULL, params, NULL, NULL, 0) == 1;
	free(array);
	if (!ok)
		waiter_lost(w);
	return ok;
}

/* IDLE: sends the sleeping statement with every pending token. */
static void
waiter_send_wait(txb_waiter *w)
{
	size_t		i;
	size_t		n = 0;

	if (!waiter_grow((void **) &w->sent, &w->sent_cap, w->live,
					 sizeof(txb_token)))
	{
		w->oom = true;
		return;
	}
	w->gen++;
	for (i = 0; i < w->cap; i++)
		if (w->slots[i].used == 1)
		{
			w->slots[i].gen = w->gen;
			w->sent[n++] = w->slots[i].token;
		}
	w->nsent = n;
	w->cancel_wanted = false;
	if (waiter_send(w, SQL_WAIT_ANY, w->sent, n))
		w->phase = WAITER_RUNNING;
}

/* ISOLATING: sends the look of the next part with pending tokens. */
static void
waiter_send_part(txb_waiter *w)
{
	txb_token  *part;

	while (w->nparts > 0)
	{
		waiter_part p = w->parts[w->nparts - 1];
		size_t		i;
		size_t		n = 0;

		part = malloc((p.len ? p.len : 1) * sizeof(txb_token));
		if (part == NULL)
		{
			w->oom = true;
			return;
		}
		for (i = p.start; i < p.start + p.len; i++)
			if (waiter_find(w, w->sent[i]) != NULL)
				part[n++] = w->sent[i];
		if (n == 0)
		{
			free(part);
			w->nparts--;
			continue;
		}
		if (waiter_send(w, SQL_LOOK_ANY, part, n))
			w->phase = WAITER_ISOLATING;
		free(part);
		return;
	}
	w->phase = WAITER_IDLE;
}

static bool
is_token_sqlstate(const char *code)
{
	return strcmp(code, "22023") == 0 || strcmp(code, "55000") == 0 ||
		strcmp(code, "2202E") == 0;
}

/*
 * Handles the result of the statement in flight (RUNNING or ISOLATING);
 * the connection is idle again.
 */
static void
waiter_result(txb_waiter *w, PGresult *res)
{
	const char *code = NULL;
	const char *primary = NULL;
	bool		isolating = (w->phase == WAITER_ISOLATING);
	waiter_part part = {0, w->nsent};

	if (isolating)
		part = w->parts[w->nparts - 1];
	w->phase = WAITER_IDLE;
	if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK &&
		PQnfields(res) == 2)
	{
		waiter_take_rows(w, res);
		w->delay_ms = WAITER_RECONNECT_FIRST_MS;
		if (isolating)
		{
			w->nparts--;
			waiter_send_part(w);
		}
		return;
	}
	if (res != NULL)
	{
		code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	}
	if (primary == NULL)
		primary = conn_message(w->conn);
	if (PQstatus(w->conn) != CONNECTION_OK || code == NULL ||
		strncmp(code, "08", 2) == 0 || strncmp(code, "57P0", 4) == 0)
	{
		waiter_lost(w);
		return;
	}
	if (strcmp(code, "57014") == 0)
		return;					/* our cancel, or statement_timeout: again */
	if ((strcmp(code, "55000") == 0 &&
		 strstr(primary, "shared_preload_libraries") != NULL) ||
		(strcmp(code, SQLSTATE_UNDEFINED_FUNCTION) == 0 &&
		 strstr(primary, "barrier_wait_any") != NULL))
	{
		char		msg[WAITER_MESSAGE_LEN];

		(void) snprintf(msg, sizeof(msg),
						"the server cannot serve a txb_waiter (%s); it needs "
						"barrier_wait_any() (extension 1.2) and tx_barrier in "
						"shared_preload_libraries", primary);
		waiter_fail_sent(w, part.start, part.len, TXB_ERR_UNAVAILABLE,
						 code, msg);
		if (isolating)
		{
			w->nparts--;
			waiter_send_part(w);
		}
		return;
	}
	if (is_token_sqlstate(code))
	{
		if (!isolating)
		{
			/* One bad token fails the whole call: look at halves. */
			if (!waiter_grow((void **) &w->parts, &w->parts_cap, 1,
							 sizeof(waiter_part)))
			{
				w->oom = true;
				return;
			}
			w->parts[0] = part;
			w->nparts = 1;
		}
		else if (part.len <= 1)
		{
			w->nparts--;
			waiter_fail_sent(w, part.start, part.len, TXB_ERR_SERVER, code,
							 primary);
		}
		else
		{
			waiter_part lo = {part.start, part.len / 2};
			waiter_part hi = {part.start + part.len / 2,
			part.len - part.len / 2};

			if (!waiter_grow((void **) &w->parts, &w->parts_cap,
							 w->nparts + 1, sizeof(waiter_part)))
			{
				w->oom = true;
				return;
			}
			w->parts[w->nparts - 1] = hi;
			w->parts[w->nparts++] = lo;
		}
		waiter_send_part(w);
		return;
	}
	if (strcmp(code, "40001") == 0)
	{
		/* A standby's recovery conflict: again after a delay. */
		w->retry_at = waiter_now_ms() + w->delay_ms;
		w->delay_ms = w->delay_ms * 2 > WAITER_RECONNECT_MAX_MS ?
			WAITER_RECONNECT_MAX_MS : w->delay_ms * 2;
		w->nparts = 0;
		return;
	}
	waiter_fail_sent(w, part.start, part.len, TXB_ERR_SERVER, code, primary);
	if (isolating)
	{
		w->nparts--;
		waiter_send_part(w);
	}
}

/* Whether fd is ready for what is asked, without waiting. */
static bool
waiter_fd_ready(int fd, bool write)
{
	struct pollfd pfd;

	pfd.fd = fd;
	pfd.events = write ? POLLOUT : POLLIN;
	pfd.revents = 0;
	return poll(&pfd, 1, 0) > 0;
}

static int
waiter_left(int64_t at, int64_t now)
{
	int64_t		left = at - now;

	if (left < 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int) left;
}

TXB_API txb_waiter *
txb_waiter_new(const char *conninfo)
{
	txb_waiter *w;

	clear_error();
	if (conninfo == NULL)
	{
		set_error(TXB_ERR_ARGUMENT, "conninfo is NULL");
		return NULL;
	}
	w = calloc(1, sizeof(txb_waiter));
	if (w != NULL)
		w->conninfo = strdup(conninfo);
	if (w == NULL || w->conninfo == NULL)
	{
		free(w);
		set_error(TXB_ERR_NO_MEMORY, "out of memory for a waiter");
		return NULL;
	}
	if (pthread_mutex_init(&w->c_mu, NULL) != 0)
	{
		free(w->conninfo);
		free(w);
		set_error(TXB_ERR_NO_MEMORY, "cannot make a mutex for a waiter");
		return NULL;
	}
	if (pthread_cond_init(&w->c_cv, NULL) != 0)
	{
		pthread_mutex_destroy(&w->c_mu);
		free(w->conninfo);
		free(w);
		set_error(TXB_ERR_NO_MEMORY, "cannot make a condition for a waiter");
		return NULL;
	}
	w->phase = WAITER_DOWN;
	w->delay_ms = WAITER_RECONNECT_FIRST_MS;
	return w;
}

TXB_API void
txb_waiter_free(txb_waiter *w)
{
	clear_error();
	if (w == NULL)
		return;
	if (w->c_started)
	{
		pthread_mutex_lock(&w->c_mu);
		w->c_stop = true;
		pthread_cond_signal(&w->c_cv);
		pthread_mutex_unlock(&w->c_mu);
		pthread_join(w->c_thread, NULL);
	}
	if (w->c_cur != NULL)
		PQfreeCancel(w->c_cur);
	pthread_mutex_destroy(&w->c_mu);
	pthread_cond_destroy(&w->c_cv);
	if (w->conn != NULL)
	{
		/* A sleeping backend does not notice that its client is gone. */
		if (w->phase == WAITER_RUNNING)
		{
			PGcancel   *cancel = PQgetCancel(w->conn);
			char		errbuf[256];

			if (cancel != NULL)
			{
				(void) PQcancel(cancel, errbuf, (int) sizeof(errbuf));
				PQfreeCancel(cancel);
			}
		}
		PQfinish(w->conn);
	}
	free(w->slots);
	free(w->sent);
	free(w->parts);
	free(w->answers);
	free(w->conninfo);
	free(w);
}

TXB_API int
txb_waiter_add(txb_waiter *w, txb_token token)
{
	waiter_slot *s;
	bool		added;

	clear_error();
	if (w == NULL || token == 0)
	{
		set_error(TXB_ERR_ARGUMENT, "%s", w ? "token 0 names no transaction" :
				  "waiter is NULL");
		return -1;
	}
	s = waiter_insert(w, token, &added);
	if (s == NULL)
	{
		set_error(TXB_ERR_NO_MEMORY, "out of memory for a pending token");
		return -1;
	}
	if (added && w->phase == WAITER_RUNNING && !w->cancel_wanted)
	{
		w->cancel_wanted = true;
		/*
		 * Not at once: with many tokens ending, the statement returns
		 * soon anyway and is issued again with the new token.
		 */
		w->cancel_next = waiter_now_ms() + WAITER_CANCEL_DELAY_MS;
		w->cancel_step_ms = WAITER_CANCEL_FIRST_MS;
		w->cancel_sent = false;
	}
	return 0;
}

TXB_API int
txb_waiter_remove(txb_waiter *w, txb_token token)
{
	waiter_slot *s;

	clear_error();
	if (w == NULL)
	{
		set_error(TXB_ERR_ARGUMENT, "waiter is NULL");
		return -1;
	}
	s = waiter_find(w, token);
	if (s == NULL)
		return 0;
	waiter_delete(w, s);
	return 1;
}

TXB_API txb_poll_status
txb_waiter_poll(txb_waiter *w, int *timeout_ms)
{
	int			timeout = -1;
	txb_poll_status st = TXB_POLL_READING;

	clear_error();
	if (w == NULL)
	{
		set_error(TXB_ERR_ARGUMENT, "waiter is NULL");
		if (timeout_ms)
			*timeout_ms = 0;
		return TXB_POLL_FAILED;
	}
	w->oom = false;
	for (;;)
	{
		int64_t		now = waiter_now_ms();
		PostgresPollingStatusType cp;
		PGresult   *res;
		int			flushed;

		if (w->oom)
			break;
		switch (w->phase)
		{
			case WAITER_DOWN:
				if (w->live == 0)
					goto out;	/* nothing to connect for */
				if (now < w->retry_at)
				{
					timeout = waiter_left(w->retry_at, now);
					goto out;
				}
				w->conn = PQconnectStart(w->conninfo);
				if (w->conn == NULL)
				{
					w->oom = true;
					break;
				}
				if (PQstatus(w->conn) == CONNECTION_BAD)
				{
					waiter_lost(w);
					continue;
				}
				w->phase = WAITER_CONNECTING;
				w->conn_wants_write = true;
				continue;

			case WAITER_CONNECTING:
				if (PQsocket(w->conn) >= 0 &&
					!waiter_fd_ready(PQsocket(w->conn), w->conn_wants_write))
				{
					st = w->conn_wants_write ? TXB_POLL_WRITING :
						TXB_POLL_READING;
					goto out;
				}
				cp = PQconnectPoll(w->conn);
				if (cp == PGRES_POLLING_FAILED)
				{
					waiter_lost(w);
					continue;
				}
				if (cp != PGRES_POLLING_OK)
				{
					w->conn_wants_write = (cp == PGRES_POLLING_WRITING);
					continue;
				}
				if (PQsetnonblocking(w->conn, 1) != 0)
				{
					waiter_lost(w);
					continue;
				}
				waiter_canceller_set(w, w->conn);
				if (w->ever_connected)
					w->reconnects++;
				w->ever_connected = true;
				w->phase = WAITER_IDLE;
				w->retry_at = 0;
				continue;

			case WAITER_IDLE:
				/* Notices a connection the server closed while idle. */
				if (!PQconsumeInput(w->conn) ||
					PQstatus(w->conn) != CONNECTION_OK)
				{
					waiter_lost(w);
					continue;
				}
				if (w->live == 0)
					goto out;
				if (now < w->retry_at)
				{
					timeout = waiter_left(w->retry_at, now);
					goto out;
				}
				if (w->nparts > 0)
					waiter_send_part(w);
				else
					waiter_send_wait(w);
				continue;

			case WAITER_RUNNING:
			case WAITER_ISOLATING:
				flushed = PQflush(w->conn);
				if (flushed < 0 || !PQconsumeInput(w->conn))
				{
					/* The error result, if libpq made one, says why. */
					while ((res = PQgetResult(w->conn)) != NULL)
						PQclear(res);
					waiter_lost(w);
					continue;
				}
				if (PQisBusy(w->conn))
				{
					if (w->phase == WAITER_RUNNING && w->cancel_wanted)
					{
						if (now >= w->cancel_next)
						{
							if (!w->cancel_sent)
								w->cancels++;
							w->cancel_sent = true;
							waiter_canceller_request(w);
							now = waiter_now_ms();
							w->cancel_next = now + w->cancel_step_ms;
							w->cancel_step_ms =
								w->cancel_step_ms * 2 > WAITER_CANCEL_MAX_MS ?
								WAITER_CANCEL_MAX_MS : w->cancel_step_ms * 2;
						}
						timeout = waiter_left(w->cancel_next, now);
					}
					st = flushed == 1 ? TXB_POLL_WRITING : TXB_POLL_READING;
					goto out;
				}
				res = collect(w->conn);
				waiter_result(w, res);
				PQclear(res);
				continue;
		}
	}
out:
	if (w->oom)
	{
		set_error(TXB_ERR_NO_MEMORY, "out of memory in the waiter");
		if (timeout_ms)
			*timeout_ms = 0;
		return TXB_POLL_FAILED;
	}
	clear_error();
	if (timeout_ms)
		*timeout_ms = timeout;
	if (w->ans_len > w->ans_head)
		return TXB_POLL_READY;
	return st;
}

TXB_API int
txb_waiter_socket(const txb_waiter *w)
{
	if (w == NULL || w->conn == NULL)
		return -1;
	return PQsocket(w->conn);
}

TXB_API int
txb_waiter_next(txb_waiter *w, txb_token *token, txb_state *state)
{
	waiter_answer *a;

	clear_error();
	if (w == NULL)
	{
		set_error(TXB_ERR_ARGUMENT, "waiter is NULL");
		return -1;
	}
	if (w->ans_head >= w->ans_len)
	{
		w->ans_head = w->ans_len = 0;
		return 0;
	}
	a = &w->answers[w->ans_head++];
	if (token)
		*token = a->token;
	if (state)
		*state = a->state;
	if (a->state == TXB_ERROR)
	{
		set_error(a->code, "%s", a->message);
		(void) snprintf(errrec.sqlstate, sizeof(errrec.sqlstate), "%s",
						a->sqlstate);
	}
	return 1;
}

TXB_API int
txb_waiter_wait(txb_waiter *w, int timeout_ms)
{
	int64_t		deadline = waiter_now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);

	for (;;)
	{
		int			tmo;
		int			left;
		struct pollfd pfd;
		txb_poll_status st = txb_waiter_poll(w, &tmo);

		if (st == TXB_POLL_READY)
			return 1;
		if (st == TXB_POLL_FAILED)
			return -1;
		if (w->live == 0)
			return 0;
		left = timeout_ms < 0 ? -1 : waiter_left(deadline, waiter_now_ms());
		if (left == 0)
			return 0;
		if (tmo < 0 || (left >= 0 && left < tmo))
			tmo = left;
		pfd.fd = txb_waiter_socket(w);
		pfd.events = POLLIN | (st == TXB_POLL_WRITING ? POLLOUT : 0);
		pfd.revents = 0;
		(void) poll(&pfd, pfd.fd >= 0 ? 1 : 0, tmo);
	}
}

TXB_API size_t
txb_waiter_pending(const txb_waiter *w)
{
	return w ? w->live : 0;
}

TXB_API int
txb_waiter_backend_pid(const txb_waiter *w)
{
	if (w == NULL || w->conn == NULL || w->phase == WAITER_DOWN ||
		w->phase == WAITER_CONNECTING)
		return 0;
	return PQbackendPID(w->conn);
}

TXB_API unsigned long
txb_waiter_reconnects(const txb_waiter *w)
{
	return w ? w->reconnects : 0;
}

TXB_API unsigned long
txb_waiter_cancels(const txb_waiter *w)
{
	return w ? w->cancels : 0;
}
