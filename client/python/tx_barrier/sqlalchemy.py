"""Transaction barriers with SQLAlchemy (1.4 and 2.0): tokens taken on a
``Session``'s (or a ``Connection``'s) transaction, and the worker's
connection from an ``Engine``.

Producer side.  Importing this module (``tx_barrier.celery`` and
``tx_barrier.rq`` import it when SQLAlchemy is installed) listens to the
public events ``Session.after_transaction_create`` / ``after_begin`` /
``after_transaction_end`` and ``Engine`` ``begin`` / ``commit`` /
``rollback``, to know which session or connection has a transaction open
in the current thread or asyncio task.  Inside ``with Session.begin():``
(or ``with engine.begin() as conn:``, or a session that began a
transaction on its own) a barrier task or job then takes its token from
``session.connection()`` -- the connection that will COMMIT -- exactly as
inside Django's ``atomic()``; ``session=`` names one explicitly.  A token
taken inside ``begin_nested()`` is the savepoint's: it reads ``aborted`` if
that savepoint is rolled back, even when the outer transaction commits.

asyncio: a synchronous publish cannot run a query on an ``AsyncSession``
from the event loop; take the token first::

    async with session.begin():
        session.add(order)
        token = await tx_barrier.sqlalchemy.enqueue_async(session)
        send_receipt.apply_async_with_barrier(args=(order.id,), token=token)

Worker side: :func:`worker_wait` waits on an ``Engine`` (any sync
PostgreSQL engine; AUTOCOMMIT), which the Celery setting
``tx_barrier_databases`` (or ``tx_barrier_dsn``) and the RQ worker's
``barrier_databases`` accept in place of a DSN.
"""

import contextvars
import os
import types
import weakref

import sqlalchemy
from sqlalchemy import event, exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from . import (SQL_ENQUEUE, SQL_WAIT, BarrierConfigurationError,
               map_error, normalize_token)

__all__ = ["enqueue", "enqueue_async", "open_transaction", "worker_wait",
           "SQLALCHEMY_VERSION"]

SQLALCHEMY_VERSION = sqlalchemy.__version__

# Weak references to the sessions and connections with a transaction begun
# in this context, innermost last.  A context variable: each thread and
# each asyncio task has its own (SQLAlchemy's asyncio greenlets share the
# task's context).
_open = contextvars.ContextVar("tx_barrier_sqlalchemy_open", default=())
# Connections a session began its transaction on: the session is the one
# that counts.
_session_owned = weakref.WeakSet()


def _push(obj):
    refs = tuple(r for r in _open.get() if r() is not None and r() is not obj)
    _open.set(refs + (weakref.ref(obj),))


def _drop(obj):
    refs = _open.get()
    if any(r() is obj for r in refs):
        _open.set(tuple(r for r in refs
                        if r() is not None and r() is not obj))


@event.listens_for(Session, "after_transaction_create")
def _session_begun(session, transaction):
    if transaction.parent is None:
        _push(session)


@event.listens_for(Session, "after_transaction_end")
def _session_ended(session, transaction):
    if transaction.parent is None:
        _drop(session)


@event.listens_for(Session, "after_begin")
def _session_connected(session, transaction, connection):
    _session_owned.add(connection)
    _drop(connection)


@event.listens_for(Engine, "begin")
def _connection_begun(conn):
    if conn not in _session_owned:
        _push(conn)


@event.listens_for(Engine, "commit")
@event.listens_for(Engine, "rollback")
def _connection_ended(conn):
    _drop(conn)


def _in_transaction(obj):
    try:
        return obj.in_transaction()
    except Exception:
        return False


def open_transaction():
    """The session or connection whose transaction is open in this thread
    or asyncio task; ``None`` if there is none.  Several at once (a second
    session begun inside the first's block) raise
    :class:`BarrierConfigurationError` asking for ``session=``."""
    found = []
    for ref in _open.get():
        obj = ref()
        if obj is None or (isinstance(obj, Connection)
                           and obj in _session_owned):
            continue
        if _in_transaction(obj):
            found.append(obj)
    if not found:
        return None
    if len(found) > 1:
        raise BarrierConfigurationError(
            "%d SQLAlchemy transactions are open: say which one the job "
            "depends on with session=" % len(found))
    return found[0]


def _connection_of(session):
    """The SQLAlchemy Connection a token is taken on."""
    if isinstance(session, Connection):
        return session
    if isinstance(session, Session):
        return session.connection()
    sync = getattr(session, "sync_session", None)
    if sync is None:
        sync = getattr(session, "sync_connection", None)
    if sync is not None:
        raise BarrierConfigurationError(
            "an asyncio session or connection: take the token with "
            "'await tx_barrier.sqlalchemy.enqueue_async(session)' and pass "
            "it as token=")
    raise BarrierConfigurationError(
        "session= must be a SQLAlchemy Session or Connection, not %r"
        % (type(session).__name__,))


def _check_sync(bind):
    # An AsyncSession's inner session used from the event loop (outside
    # run_sync) cannot run a query synchronously.
    if getattr(bind.dialect, "is_async", False):
        try:
            import greenlet
        except ImportError:
            return
        if greenlet.getcurrent().parent is None:
            raise BarrierConfigurationError(
                "an asyncio SQLAlchemy transaction is open: take the token "
                "with 'await tx_barrier.sqlalchemy.enqueue_async(session)' "
                "and pass it as token=")


def _named(conn):
    # map_error names the database from a cursor's connection.
    return types.SimpleNamespace(connection=types.SimpleNamespace(
        info=types.SimpleNamespace(dbname=conn.engine.url.database)))


def _run(conn, sql, params=()):
    try:
        return conn.exec_driver_sql(sql, params).fetchall()
    except sa_exc.DBAPIError as exc:
        mapped = map_error(exc.orig, _named(conn))
        if mapped is not None:
            raise mapped from exc
        raise


def in_transaction(session):
    """Whether a Session or Connection has a transaction open that a token
    taken now would belong to."""
    return _in_transaction(session)


def enqueue(session):
    """Takes a token on a Session's (or Connection's) current transaction,
    or savepoint; ``None`` if it has no transaction open (then nothing is
    waited for).  Raises :class:`BarrierExtensionMissing` or
    :class:`BarrierTokenError` as :func:`tx_barrier.enqueue` does (the
    transaction is then aborted, as after any failed statement)."""
    if not _in_transaction(session):
        return None
    if isinstance(session, Session):
        _check_sync(session.get_bind())
    conn = _connection_of(session)
    _check_sync(conn)
    return normalize_token(_run(conn, SQL_ENQUEUE)[0][0])


async def enqueue_async(session):
    """:func:`enqueue` on an ``AsyncSession`` or ``AsyncConnection``
    (``postgresql+psycopg``, ``postgresql+asyncpg``)."""
    if not session.in_transaction():
        return None
    if hasattr(session, "run_sync"):
        conn = await session.connection()
    else:
        conn = session
    try:
        result = await conn.exec_driver_sql(SQL_ENQUEUE)
    except sa_exc.DBAPIError as exc:
        mapped = map_error(exc.orig, _named(conn.sync_connection))
        if mapped is not None:
            raise mapped from exc
        raise
    return normalize_token(result.fetchall()[0][0])


# --- worker side -----------------------------------------------------------

def is_engine(value):
    return isinstance(value, Engine)


_pids = weakref.WeakKeyDictionary()


def worker_wait(engine, token, timeout):
    """Waits for token on a connection of engine's pool, in AUTOCOMMIT.

    A forked worker process (Celery's prefork pool, RQ's work horse) first
    drops the pool connections it inherited (``dispose(close=False)``).
    """
    pid = os.getpid()
    if _pids.get(engine, pid) != pid:
        engine.dispose(close=False)
    _pids[engine] = pid
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        return _run(conn, SQL_WAIT,
                    (normalize_token(token),
                     None if timeout is None else float(timeout)))[0][0]
