"""Transaction barriers for PostgreSQL, from Python.

A producer takes a *token* inside the transaction that changes the data
(:func:`enqueue`), sends it along with an asynchronous job, and commits.  The
consumer, before it touches the data, asks PostgreSQL to block until that
transaction has ended (:func:`wait`) and learns whether it committed or
aborted.  The work is done by the ``tx_barrier`` extension
(``CREATE EXTENSION tx_barrier``); this module only calls its SQL functions
on any DB-API connection whose driver uses the ``%s`` parameter style
(psycopg2, or a Django connection's cursor).

The Celery integration lives in :mod:`tx_barrier.celery`.
"""

__all__ = [
    "IN_PROGRESS", "COMMITTED", "ABORTED", "STATES",
    "BarrierError", "BarrierTokenError", "BarrierConfigurationError",
    "enqueue", "status", "wait", "wait_all", "in_transaction",
    "normalize_token",
]

__version__ = "1.1.0"

#: Labels of the extension's ``barrier_state`` enum.
IN_PROGRESS = "in progress"
COMMITTED = "committed"
ABORTED = "aborted"
STATES = (IN_PROGRESS, COMMITTED, ABORTED)

# SQLSTATEs the extension raises for a token it cannot answer for.
_SQLSTATE_INVALID = "22023"   # a token in the future, a negative timeout
_SQLSTATE_TOO_OLD = "55000"   # older than the commit log still knows


class BarrierError(Exception):
    """Base class of the errors this package raises."""


class BarrierTokenError(BarrierError):
    """PostgreSQL cannot say what became of the token's transaction.

    Either the token names a transaction that does not exist (yet) on this
    server -- a token sent to the wrong database cluster, or a cluster
    restored from an older backup -- or the transaction is so old that the
    commit log no longer knows its outcome.  ``sqlstate`` is the server's
    error code.
    """

    def __init__(self, message, sqlstate=None):
        super().__init__(message, sqlstate)
        self.sqlstate = sqlstate

    def __str__(self):
        return str(self.args[0])


class BarrierConfigurationError(BarrierError):
    """There is no database connection to take or check a token on."""


def normalize_token(token):
    """Returns a token as the decimal string used on the wire.

    Tokens are ``xid8`` values: unsigned 64-bit integers.  They are carried
    as strings so that no JSON implementation rounds them.
    """
    if token is None:
        return None
    if isinstance(token, bool):
        raise TypeError("a barrier token is an integer, not a bool")
    value = int(token)
    if value < 0 or value >= 1 << 64:
        raise ValueError("barrier token out of range: %r" % (token,))
    return str(value)


def _sqlstate(exc):
    for e in (exc, getattr(exc, "__cause__", None)):
        code = getattr(e, "pgcode", None)
        if code:
            return code
    return None


def _message(exc):
    for e in (exc, getattr(exc, "__cause__", None)):
        diag = getattr(e, "diag", None)
        primary = getattr(diag, "message_primary", None)
        if primary:
            return primary
    return str(exc).strip()


def _execute(connection, sql, params):
    cur = connection.cursor()
    try:
        try:
            cur.execute(sql, params)
        except Exception as exc:
            code = _sqlstate(exc)
            if code in (_SQLSTATE_INVALID, _SQLSTATE_TOO_OLD):
                raise BarrierTokenError(_message(exc), code) from exc
            raise
        return cur.fetchall()
    finally:
        cur.close()


def in_transaction(connection):
    """Tells whether a psycopg2 (or psycopg 3) connection is in a transaction
    that a token taken now would belong to.

    With ``autocommit`` off the driver opens a transaction at the first
    statement, so the answer is always yes: the token belongs to the
    transaction the caller will commit.  With ``autocommit`` on, only an
    explicit ``BEGIN`` still open counts.
    """
    if not getattr(connection, "autocommit", False):
        return True
    info = getattr(connection, "info", None)
    status = getattr(info, "transaction_status", None)
    if status is None:
        status = connection.get_transaction_status()
    return int(status) != 0     # 0 is PQTRANS_IDLE in libpq and both drivers


def enqueue(connection):
    """Takes a barrier token in the connection's current transaction.

    The token names the current (sub)transaction: if the savepoint that took
    it is rolled back, the token reads ``aborted`` even when the enclosing
    transaction commits.  Call it *before* publishing the job, and publish
    before COMMIT.
    """
    rows = _execute(connection, "SELECT barrier_enqueue()::text", ())
    return normalize_token(rows[0][0])


def status(connection, token):
    """Returns the state of the token's transaction, without waiting."""
    rows = _execute(connection, "SELECT barrier_status(%s::xid8)::text",
                    (normalize_token(token),))
    return rows[0][0]


def wait(connection, token, timeout=None):
    """Blocks until the token's transaction has ended and returns
    :data:`COMMITTED` or :data:`ABORTED`; returns :data:`IN_PROGRESS` if it
    is still running after ``timeout`` seconds (``None``: no limit).

    Run it outside an explicit transaction (autocommit) so that the queries
    that follow take a snapshot in which a committed transaction's rows are
    visible.
    """
    if timeout is not None and timeout < 0:
        raise ValueError("timeout must not be negative")
    rows = _execute(
        connection,
        "SELECT barrier_wait(%s::xid8, %s * interval '1 second')::text",
        (normalize_token(token), None if timeout is None else float(timeout)))
    return rows[0][0]


def wait_all(connection, tokens, timeout=None):
    """Waits for several tokens with one shared ``timeout`` (seconds).

    Returns a dict mapping each token (as a string) to its state.
    """
    if timeout is not None and timeout < 0:
        raise ValueError("timeout must not be negative")
    toks = [normalize_token(t) for t in tokens]
    rows = _execute(
        connection,
        "SELECT token::text, state::text FROM "
        "barrier_wait_all(%s::xid8[], %s * interval '1 second')",
        (toks, None if timeout is None else float(timeout)))
    return {tok: state for tok, state in rows}
