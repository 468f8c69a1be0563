"""Transaction barriers for PostgreSQL, from Python.

A producer takes a *token* inside the transaction that changes the data
(:func:`enqueue`), sends it along with an asynchronous job, and commits.  The
consumer, before it touches the data, asks PostgreSQL to block until that
transaction has ended (:func:`wait`) and learns whether it committed or
aborted.  The work is done by the ``tx_barrier`` extension
(``CREATE EXTENSION tx_barrier``); this module only calls its SQL functions
on any DB-API connection whose driver uses the ``%s`` parameter style
(psycopg2, psycopg 3, or a Django connection's cursor); asyncio code uses
:mod:`tx_barrier.aio` on a ``psycopg.AsyncConnection``.

The Celery integration lives in :mod:`tx_barrier.celery`; a worker process
waits for all its jobs on one connection with :class:`Waiter`.
"""

__all__ = [
    "IN_PROGRESS", "COMMITTED", "ABORTED", "STATES",
    "BarrierError", "BarrierTokenError", "BarrierConfigurationError",
    "BarrierExtensionMissing", "BarrierTimeout",
    "enqueue", "status", "wait", "wait_all", "in_transaction",
    "normalize_token",
]

__version__ = "1.2.0"

#: Labels of the extension's ``barrier_state`` enum.
IN_PROGRESS = "in progress"
COMMITTED = "committed"
ABORTED = "aborted"
STATES = (IN_PROGRESS, COMMITTED, ABORTED)

# SQLSTATEs the extension raises for a token it cannot answer for.
_SQLSTATE_INVALID = "22023"   # a token in the future, a negative timeout
_SQLSTATE_TOO_OLD = "55000"   # older than the commit log still knows
_SQLSTATE_UNDEFINED_FUNCTION = "42883"   # no barrier function on the path
_SQLSTATE_UNDEFINED_OBJECT = "42704"     # no barrier_state type on the path

# The SQL of each helper, shared with tx_barrier.aio.  Explicit casts keep
# both drivers' parameter typing (psycopg2 literals, psycopg 3 binds) exact.
SQL_ENQUEUE = "SELECT barrier_enqueue()::text"
SQL_STATUS = "SELECT barrier_status(%s::xid8)::text"
SQL_WAIT = ("SELECT barrier_wait(%s::xid8, %s::float8 * interval '1 second')"
            "::text")
SQL_WAIT_ALL = ("SELECT token::text, state::text FROM barrier_wait_all("
                "%s::text[]::xid8[], %s::float8 * interval '1 second')")


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


class BarrierTimeout(BarrierError):
    """The producing transaction was still in progress after the allowed
    number of bounded waits (Celery's ``barrier_max_retries``, RQ's
    ``barrier_max_waits``): the job or task was given up without running;
    or a :class:`Waiter`'s wait had no answer within its ``timeout``."""


class BarrierExtensionMissing(BarrierConfigurationError):
    """The barrier functions are not found in the database: neither the
    ``tx_barrier`` extension (``CREATE EXTENSION tx_barrier``) nor the
    portable edition (``portable/tx_barrier_portable.sql``, for managed
    servers where no C extension can be installed) is installed in a
    schema on the connection's ``search_path``.  ``database`` names the
    database, ``sqlstate`` is the server's error code (42883, or 42704 for
    a missing ``barrier_state`` type) and ``server_message`` the server's
    message, if known."""

    def __init__(self, database, sqlstate=_SQLSTATE_UNDEFINED_FUNCTION,
                 server_message=None):
        # args are the constructor's, so that Celery's result backend can
        # rebuild the exception.
        super().__init__(database, sqlstate, server_message)
        self.database = database
        self.sqlstate = sqlstate
        self.server_message = server_message

    def __str__(self):
        return ("the tx_barrier functions are not found in database %r "
                "(%s%s): with the C extension, run CREATE EXTENSION tx_barrier "
                "in it; with the portable edition (managed servers), install "
                "portable/tx_barrier_portable.sql (psql -v schema=tx_barrier "
                "-f ...) and put its schema on the search_path of the "
                "application's and the workers' roles (ALTER ROLE ... SET "
                "search_path = \"$user\", public, tx_barrier), with USAGE on it"
                % (self.database, self.sqlstate,
                   ": " + self.server_message if self.server_message else ""))


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
        # psycopg2 names it pgcode, psycopg 3 sqlstate.
        code = getattr(e, "pgcode", None) or getattr(e, "sqlstate", None)
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


def _database_of(cursor):
    """The database name a cursor talks to, for error messages."""
    conn = getattr(cursor, "connection", None)
    info = getattr(conn, "info", None)
    name = getattr(info, "dbname", None)
    if name is None and conn is not None:
        try:
            name = conn.get_dsn_parameters().get("dbname")
        except Exception:
            pass
    return name


def map_error(exc, cursor):
    """Returns the typed error for a driver error of a barrier function, or
    None if it is not one this package knows."""
    code = _sqlstate(exc)
    if code in (_SQLSTATE_INVALID, _SQLSTATE_TOO_OLD):
        return BarrierTokenError(_message(exc), code)
    if (code in (_SQLSTATE_UNDEFINED_FUNCTION, _SQLSTATE_UNDEFINED_OBJECT)
            and "barrier_" in _message(exc)):
        return BarrierExtensionMissing(_database_of(cursor), code,
                                       _message(exc))
    return None


def _execute(connection, sql, params):
    cur = connection.cursor()
    try:
        try:
            cur.execute(sql, params)
        except Exception as exc:
            mapped = map_error(exc, cur)
            if mapped is not None:
                raise mapped from exc
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
    rows = _execute(connection, SQL_ENQUEUE, ())
    return normalize_token(rows[0][0])


def status(connection, token):
    """Returns the state of the token's transaction, without waiting."""
    rows = _execute(connection, SQL_STATUS, (normalize_token(token),))
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
        connection, SQL_WAIT,
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
        connection, SQL_WAIT_ALL,
        (toks, None if timeout is None else float(timeout)))
    return {tok: state for tok, state in rows}


# The shared waiter (one connection for every pending wait of a process).
from .waiter import BarrierWaiterUnavailable, Waiter  # noqa: E402

__all__ += ["Waiter", "BarrierWaiterUnavailable"]
