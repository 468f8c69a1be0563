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
