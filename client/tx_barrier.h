/*
 * tx_barrier.h - C client library for tx_barrier transaction barriers.
 *
 * A producer calls txb_enqueue() inside its transaction, before COMMIT, and
 * sends the token it gets with the asynchronous work it hands to a broker.
 * The worker, before it touches the data, calls txb_wait() with that token:
 * the call returns once the producer's transaction has ended and says
 * whether it committed or aborted.  The server does the waiting (it sleeps
 * on the transaction's lock; nothing polls).
 *
 * The library is a thin layer over libpq and over the SQL functions of the
 * tx_barrier extension.  It works on a PGconn that the application owns:
 * the library never opens, closes or resets connections and never begins,
 * commits or rolls back transactions.  Each call runs one statement on the
 * connection, inside the caller's transaction if one is open, otherwise in
 * autocommit.
 *
 * SQL functions used
 *   barrier_enqueue(), barrier_status(xid8), barrier_wait(xid8, interval)
 *   and barrier_wait_all(xid8[], interval).  They are called without a
 *   schema name, so they are found through the connection's search_path.
 *   The extension installs them in pg_catalog, which PostgreSQL always
 *   searches (first, unless search_path names it elsewhere), so no
 *   search_path setting is needed.  The calls are plain statements: they
 *   work through a transaction-mode connection pooler.
 *
 * Errors
 *   The library never prints and never aborts the process.  A function
 *   that fails returns -1 or TXB_ERROR (as documented for it) and records,
 *   for the calling thread, an error code (txb_error_code()), a message
 *   (txb_error_message()) and, when the server reported the error, its
 *   SQLSTATE (txb_error_sqlstate()); PQerrorMessage(conn) then also holds
 *   the server's message.  Every library function except the three error
 *   accessors, txb_state_name() and txb_version() clears that record when
 *   it starts, so after a successful call txb_error_code() is TXB_ERR_NONE.
 *
 *   A server error inside an explicit transaction leaves that transaction
 *   failed, exactly as any other failing statement would; the application
 *   decides whether to roll back.
 *
 * Thread safety
 *   The same as libpq's: different threads may use the library at the same
 *   time on different connections; one connection must not be used by two
 *   threads at once (the application serialises access to a PGconn).
 *   The error record is per thread (thread-local storage), so one thread's
 *   failure never overwrites another thread's error.  txb_cancel() may be
 *   called from any thread while another thread waits on the connection.
 *   The library has no other global state and needs no initialisation.
 *
 * Tokens
 *   A token is the 64-bit transaction id (xid8) of the (sub)transaction that
 *   called txb_enqueue().  Its text form is the unsigned decimal number, as
 *   PostgreSQL prints an xid8: at most TXB_TOKEN_MAXLEN digits.
 */
#ifndef TX_BARRIER_H
#define TX_BARRIER_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TXB_VERSION "1.1.0"
#define TXB_VERSION_NUM 10100	/* major * 10000 + minor * 100 + patch */

/* Longest text form of a token (UINT64_MAX has 20 digits). */
#define TXB_TOKEN_MAXLEN 20
/* Buffer size that always fits a formatted token and its NUL. */
#define TXB_TOKEN_BUFSIZE (TXB_TOKEN_MAXLEN + 1)

/* A barrier token: the transaction id (xid8) of the producer's transaction. */
typedef uint64_t txb_token;

/* Outcome of a barrier transaction, or TXB_ERROR if the call failed. */
typedef enum txb_state
{
	TXB_IN_PROGRESS,			/* still running (or the wait timed out) */
	TXB_COMMITTED,				/* committed: its changes are visible */
	TXB_ABORTED,				/* rolled back, or lost in a crash */
	TXB_ERROR					/* the call failed: see txb_error_code() */
} txb_state;

/* What went wrong in the last failed call of the calling thread. */
typedef enum txb_error
{
	TXB_ERR_NONE = 0,			/* the last call succeeded */
	TXB_ERR_ARGUMENT,			/* NULL pointer, bad size, malformed token */
	TXB_ERR_CONNECTION,			/* connection NULL, bad or lost */
	TXB_ERR_BUSY,				/* connection has a command in progress or is
								 * in pipeline mode */
	TXB_ERR_TRANSACTION,		/* connection is in a failed transaction:
								 * ROLLBACK first */
	TXB_ERR_NO_EXTENSION,		/* the barrier functions do not exist in this
								 * database: CREATE EXTENSION tx_barrier */
	TXB_ERR_SERVER,				/* the server reported an error (bad or
								 * too old token, cancel, timeout...);
								 * see txb_error_sqlstate() */
	TXB_ERR_PROTOCOL,			/* the server's answer had an unexpected
								 * shape (wrong result kind, NULL state) */
	TXB_ERR_NO_MEMORY			/* an allocation failed */
} txb_error;

/* ----------------------------------------------------------------------
 * Producer
 * ---------------------------------------------------------------------- */

/*
 * txb_enqueue: registers a barrier for the current (sub)transaction of conn
 * and stores its token in *token.
 *
 * Call it inside the transaction whose outcome the work depends on, before
 * COMMIT (in autocommit the statement is its own transaction and the token
 * is committed at once).  The token belongs to the current subtransaction:
 * if a savepoint taken before the call is rolled back, the token reads
 * "aborted" even when the top-level transaction commits.
 *
 * Returns 0 on success, -1 on error (*token is left unchanged).
 */
int			txb_enqueue(PGconn *conn, txb_token *token);

/* ----------------------------------------------------------------------
 * Worker: blocking calls
 * ---------------------------------------------------------------------- */

/*
 * txb_status: the current state of the transaction named by token, without
 * waiting.  Returns TXB_IN_PROGRESS, TXB_COMMITTED, TXB_ABORTED or, on
 * error, TXB_ERROR.  A token beyond the server's next transaction id, an
 * invalid one (0, 1, 2) or one too old for the server's commit log is a
 * server error (SQLSTATE 22023 or 55000).
 */
txb_state	txb_status(PGconn *conn, txb_token token);

/*
 * txb_wait: blocks until the transaction named by token has ended, or until
 * timeout_ms milliseconds have passed, and returns its state.
 *
 * timeout_ms < 0 waits without limit; 0 only checks (like txb_status).
 * Returns TXB_COMMITTED or TXB_ABORTED once the transaction ended,
 * TXB_IN_PROGRESS if the timeout ran out first, TXB_ERROR on error.
 * The server's statement_timeout, a cancel request (txb_cancel()) or a
 * deadlock also end the wait, with TXB_ERROR and TXB_ERR_SERVER.
 * A token of the caller's own transaction (or one of its subtransactions)
 * gives TXB_IN_PROGRESS at once: it could never end while we wait.
 *
 * The calling thread is blocked for the whole wait; use txb_wait_send()
 * and friends to wait from an event loop.
 */
txb_state	txb_wait(PGconn *conn, txb_token token, int timeout_ms);

/*
 * txb_wait_all: waits until all n transactions named by tokens[0..n-1] have
 * ended, or until timeout_ms (as for txb_wait) has passed, and stores the
 * state of tokens[i] in states[i].  When the timeout ran out, the tokens
 * still running read TXB_IN_PROGRESS.  Tokens may repeat.
 *
 * tokens and states may be NULL only when n is 0.  Returns 0 on success and
 * -1 on error, in which case the contents of states are unspecified.
 */
int			txb_wait_all(PGconn *conn, const txb_token *tokens,
						 txb_state *states, size_t n, int timeout_ms);

/* ----------------------------------------------------------------------
 * Worker: nonblocking calls, for event loops
 *
 * Like libpq's asynchronous API, and usable on blocking or nonblocking
 * (PQsetnonblocking) connections:
 *
 *   txb_wait_send(conn, token, -1);          sends the wait, returns at once
 *   loop:
 *     wait until PQsocket(conn) is readable (or writable when txb_poll()
 *     said TXB_POLL_WRITING), with poll/epoll/select/your event loop;
 *     switch (txb_poll(conn)) READY: break; READING/WRITING: continue;
 *                             FAILED: handle the error;
 *   state = txb_wait_result(conn);           does not block once READY
 *
 * One thread can so wait on many connections at once.  Until the result has
 * been collected the connection is busy: other library calls on it fail
 * with TXB_ERR_BUSY.  To give up early, call txb_cancel() and then still
 * collect the result (it is then TXB_ERROR with SQLSTATE 57014).
 * ---------------------------------------------------------------------- */

/*
 * txb_wait_send: sends the wait of txb_wait(conn, token, timeout_ms) without
 * waiting for the answer.  Returns 0 if the request was queued, -1 on error.
 */
int			txb_wait_send(PGconn *conn, txb_token token, int timeout_ms);

/*
 * txb_wait_all_send: sends the wait of txb_wait_all() for n tokens without
 * waiting for the answer; collect it with txb_wait_all_result().  The
 * tokens array is not kept: it may be freed after the call.
 * Returns 0 if the request was queued, -1 on error.
 */
int			txb_wait_all_send(PGconn *conn, const txb_token *tokens, size_t n,
							  int timeout_ms);

/* Result of txb_poll(). */
typedef enum txb_poll_status
{
	TXB_POLL_FAILED = -1,		/* error (connection lost...): see
								 * txb_error_code(); collect the result
								 * anyway to release the connection */
	TXB_POLL_READING = 0,		/* not ready: wait until the socket is
								 * readable, then call txb_poll() again */
	TXB_POLL_READY = 1,			/* the result is there: collect it */
	TXB_POLL_WRITING = 2		/* nonblocking connection with unsent data:
								 * wait until the socket is readable or
								 * writable, then call txb_poll() again */
} txb_poll_status;

/*
 * txb_poll: after txb_wait_send() or txb_wait_all_send(), sends what is left
 * to send, reads what the server sent (never blocking) and tells whether
 * the result can be collected.  Call it whenever PQsocket(conn) is ready;
 * calling it when it is not is harmless.
 */
txb_poll_status txb_poll(PGconn *conn);

/*
 * txb_wait_result: collects the result of txb_wait_send().  Returns the
 * state, as txb_wait() would, or TXB_ERROR.  Blocks if called before
 * txb_poll() said TXB_POLL_READY.  Afterwards the connection is idle again.
 */
txb_state	txb_wait_result(PGconn *conn);

/*
 * txb_wait_all_result: collects the result of txb_wait_all_send() into
 * states[0..n-1]; n must be the number of tokens sent.  Returns 0 or -1,
 * as txb_wait_all().  Blocks if called before TXB_POLL_READY.  Afterwards
 * the connection is idle again, also on error.
 */
int			txb_wait_all_result(PGconn *conn, txb_state *states, size_t n);

/*
 * txb_cancel: asks the server to cancel the statement running on conn (a
 * wait sent with txb_wait_send(), or a txb_wait() blocked in another
 * thread).  Returns 0 if the request was delivered, -1 if not.  Delivery
 * does not guarantee the cancel takes effect: the wait may have ended just
 * before.  Not async-signal-safe (it allocates): from a signal handler use
 * libpq's PQcancel() on a PGcancel prepared in advance.
 */
int			txb_cancel(PGconn *conn);

/* ----------------------------------------------------------------------
 * Tokens and states
 * ---------------------------------------------------------------------- */

/*
 * txb_state_name: "in progress", "committed", "aborted" (the server's labels)
 * or "error"; "unknown" for a value outside the enum.  The string is static.
 */
const char *txb_state_name(txb_state state);

/*
 * txb_token_format: writes the decimal text of token and a NUL into buf,
 * which holds len bytes (TXB_TOKEN_BUFSIZE always suffices).  Returns the
 * number of characters written, not counting the NUL, or -1 if buf is NULL
 * or too small (then buf is left unchanged).
 */
int			txb_token_format(txb_token token, char *buf, size_t len);

/*
 * txb_token_parse: reads a token from its text form: one or more ASCII
 * decimal digits and nothing else (no sign, no spaces, no prefix), with a
 * value that fits in 64 bits.  Leading zeros are allowed.  Returns 0 and
 * stores the value in *token, or -1 (TXB_ERR_ARGUMENT) if text or token is
 * NULL or text is malformed, leaving *token unchanged.  The values 0, 1
 * and 2 parse but no transaction has them: the server rejects them.
 */
int			txb_token_parse(const char *text, txb_token *token);

/* ----------------------------------------------------------------------
 * Errors (per thread)
 * ---------------------------------------------------------------------- */

/* The kind of error of the calling thread's last failed call. */
txb_error	txb_error_code(void);

/*
 * The message of the calling thread's last failed call, one line without a
 * trailing newline, or "" after a successful call.  The string belongs to
 * the library and stays valid until the thread's next library call.
 */
const char *txb_error_message(void);

/*
 * The five-character SQLSTATE of the server error behind the last failure
 * of the calling thread, or "" if the error did not come from the server.
 * Same lifetime as txb_error_message().
 */
const char *txb_error_sqlstate(void);

/* The library's version, TXB_VERSION of the build. */
const char *txb_version(void);

#ifdef __cplusplus
}
#endif

#endif							/* TX_BARRIER_H */
