"""Finding the database connection a barrier token is taken or checked on.

Producer side: the token must come from the connection whose transaction
changes the data.  That is either a DB-API connection the caller passes in
(psycopg2) or a Django database connection, by alias (``using``).

Worker side: the token is checked on a connection to the *same* database
(the same cluster: tokens are transaction ids).  The alias travels with the
task; the worker maps it to

1. a DSN from the Celery setting ``tx_barrier_databases`` (a dict
   ``{alias: dsn}``), or, for the default alias, ``tx_barrier_dsn`` or the
   environment variable ``TX_BARRIER_DSN``: the worker keeps one psycopg2
   connection per alias and process, in autocommit mode;
2. otherwise Django's ``connections[alias]``, when Django is configured.
"""

import os
import threading

from . import BarrierConfigurationError, enqueue, in_transaction, wait

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

def producer_token(using=None, connection=None):
    """Takes a token if the producer is inside a transaction.

    Returns ``None`` when there is no open transaction (autocommit): then
    nothing is waited for, the job behaves like a plain one.
    """
    if connection is not None:
        if not in_transaction(connection):
            return None
        return enqueue(connection)
    connections = _django_connections()
    if connections is None:
        raise BarrierConfigurationError(
            "no database connection: pass a DB-API connection (db_connection=) "
            "or configure Django")
    conn = connections[using or DEFAULT_ALIAS]
    if not conn.in_atomic_block and conn.get_autocommit():
        return None
    if conn.vendor != "postgresql":
        raise BarrierConfigurationError(
            "database %r is %s, transaction barriers need PostgreSQL"
            % (using or DEFAULT_ALIAS, conn.vendor))
    with conn.cursor() as cur:
        return enqueue(_CursorAsConnection(cur))


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


class _DsnConnections:
    """One autocommit psycopg2 connection per (process, thread, DSN)."""

    def __init__(self):
        self._local = threading.local()

    def get(self, dsn):
        conns = self._conns()
        conn = conns.get(dsn)
        if conn is None or conn.closed:
            import psycopg2
            conn = psycopg2.connect(dsn)
            conn.autocommit = True
            conns[dsn] = conn
        return conn

    def discard(self, dsn):
        conn = self._conns().pop(dsn, None)
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
    if dsn is not None:
        conn = _dsn_connections.get(dsn)
        try:
            return wait(conn, token, timeout)
        except Exception:
            if conn.closed:
                _dsn_connections.discard(dsn)
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
