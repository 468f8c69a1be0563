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

#define TXB_VERSION "1.2.0"
#define TXB_VERSION_NUM 10200	/* major * 10000 + minor * 100 + patch */

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
	TXB_ERR_NO_MEMORY,			/* an allocation failed */
	TXB_ERR_UNAVAILABLE			/* a txb_waiter cannot sleep on this server:
								 * no tx_barrier in shared_preload_libraries
								 * (55000) or no barrier_wait_any() (42883) */
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
 * Shared waiter: one connection serving many pending waits
 *
 * txb_wait() holds a backend per waiting job.  A txb_waiter holds one
 * connection of its own, made from a conninfo string, and waits on it for
 * every token added to it with barrier_wait_any() (extension 1.2; sleeping
 * needs tx_barrier in shared_preload_libraries).  Each token is answered
 * once, as soon as its own transaction has ended.
 *
 * It never blocks and is driven like libpq's asynchronous API:
 *
 *   txb_waiter *w = txb_waiter_new("dbname=shop application_name=worker");
 *   txb_waiter_add(w, token);                  as jobs arrive
 *   loop:
 *     st = txb_waiter_poll(w, &timeout_ms);    makes progress, never blocks
 *     while (txb_waiter_next(w, &token, &state) == 1)
 *         ... state is TXB_COMMITTED, TXB_ABORTED or TXB_ERROR ...
 *     wait until txb_waiter_socket(w) is readable (also writable when st
 *     is TXB_POLL_WRITING), for at most timeout_ms (-1: no limit), then
 *     loop; a socket of -1 means: no connection now, just wait timeout_ms
 *   txb_waiter_free(w);
 *
 * The socket can change from one txb_waiter_poll() to the next (the waiter
 * connects again): ask txb_waiter_socket() after every call.
 * txb_waiter_wait() runs that loop with poll(2) for callers without an
 * event loop.
 *
 * How it waits: one barrier_wait_any(pending tokens) at a time.  A token
 * added while it sleeps is taken in when the statement returns (some token
 * ended); if it has not returned 10 ms later, the waiter cancels it (a
 * PQcancel() request, sent by a thread of the waiter's own, started at the
 * first cancel, since PQcancel() blocks for a round trip on a new
 * connection to the server), repeated from 20 ms doubling to 1 s until the
 * statement has ended, as a request that reaches the server before the
 * statement has started is ignored; the statement is then issued again
 * with every pending token.  Tokens added meanwhile join without another
 * cancel.
 *
 * Reconnecting: when the connection is lost (server restart, failover,
 * pg_terminate_backend(), idle_session_timeout) or cannot be made, the
 * waiter connects again after 100 ms, doubling up to 10 s, for as long as
 * tokens are pending, and waits again for all of them: outcomes are in the
 * commit log, so none is lost.  Nothing connects before the first token.
 * The application bounds each wait itself: txb_waiter_remove() gives up
 * on a token.
 *
 * Errors of one token are answered for that token only: txb_waiter_next()
 * gives TXB_ERROR and sets the thread's error record (txb_error_code(),
 * txb_error_sqlstate(), txb_error_message()) for it.  A token the server
 * cannot answer for (22023, 55000: TXB_ERR_SERVER) fails one whole
 * barrier_wait_any() call; the waiter then finds it by halves, looking
 * without sleeping, and fails only it.  Without preloading, a token whose
 * transaction is still running gets TXB_ERR_UNAVAILABLE (SQLSTATE 55000),
 * as does every token on a server without barrier_wait_any() (42883);
 * tokens that have ended are answered in any case.
 *
 * A txb_waiter is not thread-safe: one thread drives it.  Link with
 * -pthread (pkg-config --libs --static tx_barrier says so).
 * ---------------------------------------------------------------------- */

typedef struct txb_waiter txb_waiter;

/*
 * txb_waiter_new: a waiter that connects with conninfo (as PQconnectdb
 * reads it; copied) when it has a token to wait for.  NULL if out of
 * memory or conninfo is NULL.
 */
txb_waiter *txb_waiter_new(const char *conninfo);

/*
 * txb_waiter_free: cancels the sleeping statement, if any, closes the
 * connection and frees the waiter and its unanswered tokens.  NULL is
 * accepted.
 */
void		txb_waiter_free(txb_waiter *w);

/*
 * txb_waiter_add: waits for token too.  Adding a token already pending
 * does nothing (it is answered once).  Returns 0, or -1 on error
 * (TXB_ERR_ARGUMENT for a NULL waiter or token 0, TXB_ERR_NO_MEMORY).
 * Call txb_waiter_poll() afterwards: it sends or cancels as needed.
 */
int			txb_waiter_add(txb_waiter *w, txb_token token);

/*
 * txb_waiter_remove: gives up on a pending token (its timeout passed):
 * it is not answered.  Returns 1 if it was pending, 0 if not (unknown, or
 * already answered and waiting in txb_waiter_next()'s queue).
 */
int			txb_waiter_remove(txb_waiter *w, txb_token token);

/*
 * txb_waiter_poll: does whatever can be done without waiting: connects,
 * sends, reads answers, cancels to take new tokens in, connects again
 * after a loss.  Stores in *timeout_ms (if not NULL) how long the caller
 * may wait on the socket at most before calling it again (-1: no limit).
 * Returns TXB_POLL_READY when answers wait in txb_waiter_next(),
 * TXB_POLL_READING (wait until the socket is readable), TXB_POLL_WRITING
 * (readable or writable), or TXB_POLL_FAILED (a NULL waiter, out of
 * memory); a lost connection is not a failure.  Calling it more often
 * than needed is harmless.
 */
txb_poll_status txb_waiter_poll(txb_waiter *w, int *timeout_ms);

/*
 * txb_waiter_socket: the socket to wait on (PQsocket() of the current
 * connection), or -1 while there is none.
 */
int			txb_waiter_socket(const txb_waiter *w);

/*
 * txb_waiter_next: takes the next answer: returns 1 and stores the token
 * and its state (TXB_COMMITTED, TXB_ABORTED, or TXB_ERROR with the error
 * record set for that token), or 0 when no answer waits.  Either pointer
 * may be NULL.
 */
int			txb_waiter_next(txb_waiter *w, txb_token *token, txb_state *state);

/*
 * txb_waiter_wait: runs txb_waiter_poll() and poll(2) on the socket until
 * an answer waits (1), timeout_ms passed (0; < 0: no limit) or
 * txb_waiter_poll() failed (-1).  Returns at once with 0 if nothing is
 * pending and no answer waits.
 */
int			txb_waiter_wait(txb_waiter *w, int timeout_ms);

/* Tokens pending (added, not answered, not removed). */
size_t		txb_waiter_pending(const txb_waiter *w);

/* The server pid of the waiter's connection, 0 while there is none. */
int			txb_waiter_backend_pid(const txb_waiter *w);

/* How many times the waiter connected again after a loss. */
unsigned long txb_waiter_reconnects(const txb_waiter *w);

/* How many statements the waiter cancelled to take new tokens in. */
unsigned long txb_waiter_cancels(const txb_waiter *w);

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
