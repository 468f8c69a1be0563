"""Finding the database connection a barrier token is taken or checked on.

Producer side: the token must come from the connection whose transaction
changes the data.  That is a DB-API connection the caller passes in
(psycopg2, psycopg 3), a SQLAlchemy ``Session`` or ``Connection``
(``session``), a token the caller took already (``token``), or, by
default, the open transaction: Django's ``atomic()`` block (by alias,
``using``), else the SQLAlchemy session or connection with a transaction
open in this thread or asyncio task (:mod:`tx_barrier.sqlalchemy`).

Worker side: the token is checked on a connection to the *same* database
(the same cluster: tokens are transaction ids).  The alias travels with the
task; the worker maps it to

1. a DSN from the Celery setting ``tx_barrier_databases`` (a dict
   ``{alias: dsn}``; a value may also be a SQLAlchemy ``Engine``, whose
   pool is then used in AUTOCOMMIT), or, for the default alias,
   ``tx_barrier_dsn`` (a DSN or an ``Engine``) or the environment
   variable ``TX_BARRIER_DSN``: the worker keeps one
   connection per alias and process, in autocommit mode, made with the
   driver the Celery setting ``tx_barrier_driver`` names (``"psycopg2"`` or
   ``"psycopg"``, or a dict ``{alias: driver}``; default psycopg2 if
   installed, else psycopg 3);
2. otherwise Django's ``connections[alias]``, when Django is configured.
"""

import os
import threading

from . import (BarrierConfigurationError, enqueue, in_transaction,
               normalize_token, wait)

DEFAULT_ALIAS = "default"


def _django_connections():
    """Returns django.db.connections if Django is importable and configured."""
    try:
        from django.conf import settings
    except ImportError:
        return None
    if not settings.configured:
        return None
    from django.db import connections
    return connections


# --- producer side ---------------------------------------------------------

def sqlalchemy_support():
    """tx_barrier.sqlalchemy if SQLAlchemy is installed (importing it
    starts following sessions' transactions), else ``None``."""
    try:
        from . import sqlalchemy as txsa
    except ImportError:
        return None
    return txsa


def open_transaction(using=None):
    """The transaction a publish without an explicit connection depends on:
    ``("django", alias)`` for an open ``atomic()`` block (on ``using``, or
    the only alias with one), ``("sqlalchemy", session_or_connection)``
    for a SQLAlchemy transaction open in this thread or asyncio task, or
    ``None``."""
    connections = _django_connections()
    if connections is not None and _django_atomic(connections, using):
        return ("django", using or open_atomic_alias(connections))
    txsa = sqlalchemy_support()
    if txsa is not None:
        obj = txsa.open_transaction()
        if obj is not None:
            return ("sqlalchemy", obj)
    return None


def producer_token(using=None, connection=None, session=None, token=None):
    """Takes a token if the producer is inside a transaction.

    Returns ``None`` when there is no open transaction (autocommit): then
    nothing is waited for, the job behaves like a plain one.
    """
    if token is not None:
        return normalize_token(token)
    if connection is not None:
        if not in_transaction(connection):
            return None
        return enqueue(connection)
    if session is not None:
        txsa = sqlalchemy_support()
        if txsa is None:
            raise BarrierConfigurationError(
                "session= needs SQLAlchemy, which is not installed")
        return txsa.enqueue(session)
    connections = _django_connections()
    if connections is None or not _django_atomic(connections, using):
        found = open_transaction(using)
        if found is not None and found[0] == "sqlalchemy":
            return sqlalchemy_support().enqueue(found[1])
        if connections is None:
            if sqlalchemy_support() is not None:
                return None     # no transaction open: nothing to wait for
            raise BarrierConfigurationError(
                "no database connection: pass a DB-API connection "
                "(db_connection=) or a SQLAlchemy session (session=), or "
                "configure Django")
        if using is not None and using not in connections.settings:
            return None     # an alias of the worker's DSNs or engines
    if using is None:
        using = open_atomic_alias(connections)
    conn = connections[using or DEFAULT_ALIAS]
    if not conn.in_atomic_block and conn.get_autocommit():
        return None
    if conn.vendor != "postgresql":
        raise BarrierConfigurationError(
            "database %r is %s, transaction barriers need PostgreSQL"
            % (using or DEFAULT_ALIAS, conn.vendor))
    with conn.cursor() as cur:
        return enqueue(_CursorAsConnection(cur))


def _django_atomic(connections, using):
    """Whether Django has an atomic() block open on using (or on the only
    alias with one); raises if blocks are open on several."""
    alias = using or open_atomic_alias(connections) or DEFAULT_ALIAS
    if alias not in connections.settings:
        return False        # not a Django alias: a DSN or Engine alias
    return connections[alias].in_atomic_block


def open_atomic_alias(connections=None):
    """The alias of the open ``atomic()`` block, when only one database has
    one; ``None`` (meaning ``"default"``) when none has.  With blocks open on
    several databases Django cannot tell which is innermost: that raises
    :class:`BarrierConfigurationError` asking for ``using=``."""
    if connections is None:
        connections = _django_connections()
        if connections is None:
            return None
    open_ = [alias for alias in connections
             if _initialized(connections, alias)
             and connections[alias].in_atomic_block]
    if not open_:
        return None
    if len(open_) == 1:
        return open_[0]
    raise BarrierConfigurationError(
        "atomic() blocks are open on databases %s: say which transaction "
        "the task depends on with using=" % ", ".join(sorted(open_)))


def _initialized(connections, alias):
    # Do not create a connection object just to ask it a question.
    try:
        return hasattr(connections._connections, alias)
    except AttributeError:
        return True


class _CursorAsConnection:
    # A Django cursor wrapper is not a connection: this gives the functions
    # of tx_barrier an object whose cursor() hands out that cursor, unclosed.
    def __init__(self, cursor):
        self._cursor = cursor

    def cursor(self):
        return _UnclosedCursor(self._cursor)


class _UnclosedCursor:
    def __init__(self, cursor):
        self._cursor = cursor

    def __getattr__(self, name):
        return getattr(self._cursor, name)

    def close(self):
        pass


# --- worker side -----------------------------------------------------------

def _dsn_for(conf, using):
    alias = using or DEFAULT_ALIAS
    databases = (conf.get("tx_barrier_databases") if conf is not None
                 else None) or {}
    dsn = databases.get(alias)
    if dsn is None and alias == DEFAULT_ALIAS:
        dsn = (conf.get("tx_barrier_dsn") if conf is not None else None) \
            or os.environ.get("TX_BARRIER_DSN")
    return dsn


def connect(dsn, driver=None):
    """An autocommit connection to dsn with psycopg2 or psycopg (3)."""
    if driver is None:
        try:
            import psycopg2.extensions  # noqa: F401
            driver = "psycopg2"
        except ImportError:
            driver = "psycopg"
    if driver == "psycopg2":
        import psycopg2
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        return conn
    if driver == "psycopg":
        import psycopg
        # No server-side prepared statements: the same wait runs again and
        # again, and a transaction-mode pooler (PgBouncer before 1.21)
        # would send a later one to a server that never prepared it.
        return psycopg.connect(dsn, autocommit=True, prepare_threshold=None)
    raise BarrierConfigurationError(
        "tx_barrier_driver must be 'psycopg2' or 'psycopg', not %r" % (driver,))


class _DsnConnections:
    """One autocommit connection per (process, thread, driver, DSN)."""

    def __init__(self):
        self._local = threading.local()

    def get(self, dsn, driver=None):
        conns = self._conns()
        conn = conns.get((driver, dsn))
        if conn is None or conn.closed:
            conn = connect(dsn, driver)
            conns[(driver, dsn)] = conn
        return conn

    def discard(self, dsn, driver=None):
        conn = self._conns().pop((driver, dsn), None)
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def _conns(self):
        # A forked child must not share its parent's socket: key on the pid.
        pid = os.getpid()
        if getattr(self._local, "pid", None) != pid:
            self._local.pid = pid
            self._local.conns = {}
        return self._local.conns


_dsn_connections = _DsnConnections()


def worker_wait(token, timeout, using=None, conf=None):
    """Waits for ``token`` on the worker's connection for alias ``using``.

    Returns the barrier state.  On a broken connection the connection is
    dropped (the next call reconnects) and the error propagates.
    """
    dsn = _dsn_for(conf, using)
    if dsn is not None and not isinstance(dsn, str):
        txsa = sqlalchemy_support()
        if txsa is not None and txsa.is_engine(dsn):
            return txsa.worker_wait(dsn, token, timeout)
        raise BarrierConfigurationError(
            "the worker's database for alias %r must be a DSN string or a "
            "SQLAlchemy Engine, not %r" % (using or DEFAULT_ALIAS,
                                           type(dsn).__name__))
    if dsn is not None:
        driver = conf.get("tx_barrier_driver") if conf is not None else None
        if isinstance(driver, dict):
            driver = driver.get(using or DEFAULT_ALIAS)
        conn = _dsn_connections.get(dsn, driver)
        try:
            return wait(conn, token, timeout)
        except Exception:
            if conn.closed:
                _dsn_connections.discard(dsn, driver)
            raise
    connections = _django_connections()
    if connections is None:
        raise BarrierConfigurationError(
            "no database for alias %r in the worker: set the Celery setting "
            "tx_barrier_databases / tx_barrier_dsn, TX_BARRIER_DSN, or "
            "configure Django" % (using or DEFAULT_ALIAS,))
    conn = connections[using or DEFAULT_ALIAS]
    try:
        with conn.cursor() as cur:
            return wait(_CursorAsConnection(cur), token, timeout)
    except Exception:
        conn.close_if_unusable_or_obsolete()
        raise


def is_transient(exc):
    """Connection trouble and cancelled statements: worth trying again."""
    candidates = [exc, getattr(exc, "__cause__", None)]
    transient = ()
    try:
        import psycopg2
        transient += (psycopg2.OperationalError, psycopg2.InterfaceError)
    except ImportError:
        pass
    try:
        import psycopg
        transient += (psycopg.OperationalError, psycopg.InterfaceError)
    except ImportError:
        pass
    try:
        from django.db import utils as dj
        transient += (dj.OperationalError, dj.InterfaceError)
    except ImportError:
        pass
    try:
        from sqlalchemy import exc as sa_exc
        transient += (sa_exc.OperationalError, sa_exc.InterfaceError)
    except ImportError:
        pass
    return any(isinstance(e, transient) for e in candidates if e is not None)
