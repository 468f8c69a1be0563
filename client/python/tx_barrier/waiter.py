"""A shared waiter: one database connection serving every pending barrier
wait of a process.

``tx_barrier.wait()`` blocks a backend per waiting job: a worker process
running 100 jobs at once in threads holds 100 connections, each asleep on
one transaction id.  A :class:`Waiter` holds one.  Its background thread
runs ``barrier_wait_any(pending tokens)`` in a loop, which sleeps until the
first of them has ended and answers every one that has; the thread hands
each answer to the callers waiting on that token and waits again for the
rest.

New tokens while the statement sleeps: the statement is cancelled (a cancel
request, as ``connection.cancel()`` sends it) and issued again with the
larger set.  A cancel request that reaches the server before it has started
the statement is ignored, so it is repeated (after 20 ms, doubling up to
one second) until that statement has ended.  A token added while the
statement sleeps is looked at after one cancel round trip (a new TCP
connection to the server and the statement issued again); tokens added
while a statement is being issued again join it without another cancel.

Connection loss (server restart, failover, ``pg_terminate_backend()``,
``idle_session_timeout``): the thread connects again, after
``reconnect_delay`` seconds doubling up to ``reconnect_max_delay``, for as
long as any token is pending, and waits again for every pending token:
outcomes are in the commit log, so no answer is lost or changed by the
reconnect.  Callers keep waiting meanwhile, each until its own timeout.

The statement needs ``tx_barrier`` in ``shared_preload_libraries`` to
sleep.  Without it (SQLSTATE 55000), or without ``barrier_wait_any()`` at
all (an extension still at version 1.0 or 1.1, the portable edition;
42883), the waiting callers get :class:`BarrierWaiterUnavailable` rather
than a silent fallback to one backend per wait: the fallback is
``tx_barrier.wait()`` on a connection of the caller's own.  Tokens that
have already ended are answered in any case.
"""

import logging
import os
import threading
import weakref

from . import (ABORTED, COMMITTED, BarrierConfigurationError, BarrierError,
               BarrierTimeout, _message, _sqlstate, map_error, normalize_token)

__all__ = ["Waiter", "BarrierWaiterUnavailable"]

log = logging.getLogger("tx_barrier.waiter")

SQL_WAIT_ANY = ("SELECT token::text, state::text "
                "FROM barrier_wait_any(%s::text[]::xid8[])")
# Looks without sleeping (needs no preloading): isolating a bad token.
SQL_LOOK_ANY = ("SELECT token::text, state::text "
                "FROM barrier_wait_any(%s::text[]::xid8[], interval '0')")

_SQLSTATE_CANCELED = "57014"
_SQLSTATE_NOT_PREPARED = "55000"    # no preloading, or a token too old
_SQLSTATE_UNDEFINED_FUNCTION = "42883"
_TOKEN_SQLSTATES = ("22023", "55000", "2202E")
_SERIALIZATION_FAILURE = "40001"    # a standby's recovery conflict

_CANCEL_FIRST_RESEND = 0.02
_CANCEL_MAX_RESEND = 1.0


class BarrierWaiterUnavailable(BarrierConfigurationError):
    """The server cannot serve a :class:`Waiter`: ``barrier_wait_any()``
    would have to sleep and ``tx_barrier`` is not in
    ``shared_preload_libraries`` (``sqlstate`` 55000), or there is no
    ``barrier_wait_any()`` (42883: the extension is at version 1.0 or 1.1
    -- run ``ALTER EXTENSION tx_barrier UPDATE`` --, the portable edition,
    or no extension at all).  ``server_message`` is the server's message.
    Wait with :func:`tx_barrier.wait` on a connection of the caller's own
    instead, or preload the library."""

    def __init__(self, message, sqlstate=None, server_message=None):
        super().__init__(message, sqlstate, server_message)
        self.sqlstate = sqlstate
        self.server_message = server_message

    def __str__(self):
        return str(self.args[0])


class _Call:
    """One caller's wait on one token."""

    __slots__ = ("token", "event", "state", "error", "notify")

    def __init__(self, token, notify=None):
        self.token = token
        self.event = threading.Event()
        self.state = None
        self.error = None
        self.notify = notify

    def finish(self, state=None, error=None):
        self.state = state
        self.error = error
        self.event.set()
        if self.notify is not None:
            try:
                self.notify()
            except Exception:       # e.g. the caller's event loop is closed
                pass

    def result(self):
        if self.error is not None:
            raise self.error
        return self.state


# Waiters of this process, reset in a forked child (see _after_fork).
_live = weakref.WeakSet()
# Connections inherited from the parent: never closed (nor garbage
# collected) in the child, whose libpq would end the parent's session.
_inherited = []


def _after_fork():
    for waiter in list(_live):
        waiter._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _closed(conn):
    try:
        return bool(conn.closed)
    except Exception:
        return True


def _connection_errors():
    errors = ()
    try:
        import psycopg2
        errors += (psycopg2.OperationalError, psycopg2.InterfaceError)
    except ImportError:
        pass
    try:
        import psycopg
        errors += (psycopg.OperationalError, psycopg.InterfaceError)
    except ImportError:
        pass
    return errors


class Waiter:
    """One connection, many waits.

    ``Waiter(dsn)`` connects with the driver ``driver`` names
    (``"psycopg2"`` or ``"psycopg"``; default psycopg2 if installed, else
    psycopg 3); ``Waiter(connect=factory)`` calls ``factory()`` for a new
    DB-API connection (psycopg2 or psycopg 3) each time it connects, and
    turns its autocommit on.  Nothing connects before the first wait: a
    Waiter made at import time, before a Celery prefork pool forks, makes
    its connection in each child.  A forked child gets a fresh, empty
    Waiter of its own (the parent's connection is left to the parent).

    :meth:`wait` is thread-safe; :meth:`wait_async` is its asyncio form.
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, dsn=None, *, connect=None, driver=None,
                 reconnect_delay=0.1, reconnect_max_delay=10.0):
        if (dsn is None) == (connect is None):
            raise TypeError("Waiter needs either a DSN or connect=, not both")
        if driver not in (None, "psycopg2", "psycopg"):
            raise BarrierConfigurationError(
                "driver must be 'psycopg2' or 'psycopg', not %r" % (driver,))
        if reconnect_delay <= 0 or reconnect_max_delay < reconnect_delay:
            raise ValueError("need 0 < reconnect_delay <= reconnect_max_delay")
        self._dsn = dsn
        self._factory = connect
        self._driver = driver
        self._reconnect_delay = float(reconnect_delay)
        self._reconnect_max_delay = float(reconnect_max_delay)
        self._reset()
        _live.add(self)

    # --- state ------------------------------------------------------------

    def _reset(self):
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._calls = {}            # token -> [_Call, ...]
        self._sent = frozenset()    # tokens of the statement in flight
        self._generation = 0        # statements issued so far
        self._running = False       # a statement is in flight
        self._cancel_for = None     # generation a cancel is wanted for
        self._conn = None
        self._threads = []
        self._closed = False
        self._last_error = None
        #: Times the waiter connected again after losing its connection.
        self.reconnects = 0
        #: Statements cancelled to take new tokens in.
        self.cancels = 0
        #: The server pid of the current connection (None while there is
        #: none).
        self.backend_pid = None

    def _forked(self):
        if self._conn is not None:
            _inherited.append(self._conn)
        closed = self._closed
        self._reset()
        self._closed = closed

    def _start(self):
        # Under the lock.
        if self._threads:
            return
        for target, name in ((self._loop, "tx_barrier waiter"),
                             (self._canceller, "tx_barrier waiter cancel")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    # --- callers ----------------------------------------------------------

    def _add(self, call):
        with self._lock:
            if self._closed:
                raise BarrierError("the waiter is closed")
            self._start()
            self._calls.setdefault(call.token, []).append(call)
            if (self._running and call.token not in self._sent
                    and self._cancel_for != self._generation):
                self._cancel_for = self._generation
            self._changed.notify_all()

    def _withdraw(self, call):
        """Takes an unanswered call back; False if it was answered."""
        with self._lock:
            if call.event.is_set():
                return False
            calls = self._calls.get(call.token)
            if calls is not None:
                calls.remove(call)
                if not calls:
                    del self._calls[call.token]
            return True

    def _timeout(self, token, timeout):
        why = ""
        with self._lock:
            if self._conn is None and self._last_error is not None:
                why = " (no connection to the server: %s)" % self._last_error
        return BarrierTimeout(
            "the transaction of barrier token %s is still in progress after "
            "%ss%s" % (token, timeout, why))

    @staticmethod
    def _check(token, timeout):
        tok = normalize_token(token)
        if tok is None:
            raise TypeError("a barrier token is needed, not None")
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must not be negative")
        return tok

    def wait(self, token, timeout=None):
        """Blocks the calling thread until the token's transaction has ended
        and returns :data:`~tx_barrier.COMMITTED` or
        :data:`~tx_barrier.ABORTED`.  Raises
        :class:`~tx_barrier.BarrierTimeout` if it is still running after
        ``timeout`` seconds (``None``: no limit),
        :class:`~tx_barrier.BarrierTokenError` for a token the server cannot
        answer for, :class:`BarrierWaiterUnavailable` if the server cannot
        sleep on it, all with the server's ``sqlstate``."""
        tok = self._check(token, timeout)
        call = _Call(tok)
        self._add(call)
        if not call.event.wait(timeout) and self._withdraw(call):
            raise self._timeout(tok, timeout)
        return call.result()

    async def wait_async(self, token, timeout=None):
        """:meth:`wait` for asyncio: suspends the coroutine, not the event
        loop (the waiter's thread does the waiting).  Cancelling the
        coroutine withdraws its wait."""
        import asyncio
        tok = self._check(token, timeout)
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def notify():
            loop.call_soon_threadsafe(
                lambda: done.done() or done.set_result(None))

        call = _Call(tok, notify)
        self._add(call)
        try:
            await asyncio.wait_for(done, timeout)
        except asyncio.TimeoutError:
            if self._withdraw(call):
                raise self._timeout(tok, timeout) from None
        except BaseException:
            self._withdraw(call)
            raise
        return call.result()

    def pending(self):
        """How many distinct tokens are waited for now."""
        with self._lock:
            return len(self._calls)

    def close(self, timeout=None):
        """Stops the waiter: pending waits raise BarrierError, the
        connection is closed.  Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            calls = [c for cs in self._calls.values() for c in cs]
            self._calls = {}
            if self._running:
                self._cancel_for = self._generation
            self._stop.set()
            self._changed.notify_all()
            threads = list(self._threads)
        for call in calls:
            call.finish(error=BarrierError("the waiter was closed"))
        for t in threads:
            if t is not threading.current_thread():
                t.join(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- the background threads --------------------------------------------

    def _connect(self):
        if self._factory is not None:
            conn = self._factory()
            if not getattr(conn, "autocommit", False):
                conn.autocommit = True
        else:
            from . import db
            conn = db.connect(self._dsn, self._driver)
        return conn

    @staticmethod
    def _execute(conn, sql, tokens):
        cur = conn.cursor()
        try:
            cur.execute(sql, (list(tokens),))
            return cur.fetchall()
        finally:
            try:
                cur.close()
            except Exception:
                pass

    def _loop(self):
        delay = self._reconnect_delay
        lost = False
        conn = None
        try:
            while True:
                with self._lock:
                    while not self._calls and not self._closed:
                        self._changed.wait()
                    if self._closed:
                        return
                if conn is None:
                    try:
                        conn = self._connect()
                        pid = self._backend_pid(conn)
                    except Exception as exc:
                        self._close_quietly(conn)
                        conn = None
                        with self._lock:
                            self._last_error = exc
                        log.warning("tx_barrier waiter: cannot connect (%s); "
                                    "trying again in %.1fs", exc, delay)
                        if self._stop.wait(delay):
                            return
                        delay = min(delay * 2, self._reconnect_max_delay)
                        continue
                    with self._lock:
                        self._conn = conn
                        self.backend_pid = pid
                        self._last_error = None
                        if lost:
                            self.reconnects += 1
                    if lost:
                        log.info("tx_barrier waiter: connected again "
                                 "(backend %s); waiting again for %d tokens",
                                 pid, self.pending())
                    lost = False
                with self._lock:
                    if self._closed:
                        return
                    tokens = sorted(self._calls, key=int)
                    if not tokens:
                        continue
                    self._generation += 1
                    self._sent = frozenset(tokens)
                    self._running = True
                try:
                    rows = self._execute(conn, SQL_WAIT_ANY, tokens)
                except Exception as exc:
                    with self._lock:
                        self._running = False
                        self._changed.notify_all()
                    outcome = self._failed(conn, tokens, exc)
                    if outcome == "lost":
                        lost = True
                        self._close_quietly(conn)
                        conn = None
                        with self._lock:
                            self._conn = None
                            self.backend_pid = None
                            self._last_error = exc
                        log.warning("tx_barrier waiter: connection lost (%s); "
                                    "connecting again in %.1fs",
                                    str(exc).strip(), delay)
                        if self._stop.wait(delay):
                            return
                        delay = min(delay * 2, self._reconnect_max_delay)
                    elif outcome == "again":
                        if self._stop.wait(delay):
                            return
                        delay = min(delay * 2, self._reconnect_max_delay)
                    continue
                with self._lock:
                    self._running = False
                    self._changed.notify_all()
                delay = self._reconnect_delay
                self._answer(rows)
        except BaseException as exc:    # a bug: do not leave callers hanging
            log.exception("tx_barrier waiter: stopped")
            with self._lock:
                self._closed = True
                calls = [c for cs in self._calls.values() for c in cs]
                self._calls = {}
                self._stop.set()
                self._changed.notify_all()
            for call in calls:
                call.finish(error=BarrierError(
                    "the waiter stopped: %r" % (exc,)))
        finally:
            self._close_quietly(conn)
            with self._lock:
                self._conn = None
                self.backend_pid = None

    @staticmethod
    def _backend_pid(conn):
        info = getattr(conn, "info", None)
        pid = getattr(info, "backend_pid", None)
        if pid is None:
            pid = conn.get_backend_pid()
        return pid

    @staticmethod
    def _close_quietly(conn):
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def _canceller(self):
        """Cancels the statement in flight when a caller added a token it
        does not have; repeats the cancel until that statement has ended."""
        while True:
            with self._lock:
                while not (self._running and
                           self._cancel_for == self._generation):
                    if self._closed and not self._running:
                        return
                    self._changed.wait()
                gen = self._generation
                conn = self._conn
                self.cancels += 1
            resend = _CANCEL_FIRST_RESEND
            while True:
                try:
                    conn.cancel()
                except Exception:
                    pass
                with self._lock:
                    if self._running and self._generation == gen:
                        self._changed.wait(resend)
                    if not (self._running and self._generation == gen):
                        break
                resend = min(resend * 2, _CANCEL_MAX_RESEND)

    def _answer(self, rows):
        done = []
        with self._lock:
            for tok, state in rows:
                for call in self._calls.pop(tok, ()):
                    done.append((call, state))
        for call, state in done:
            if state in (COMMITTED, ABORTED):
                call.finish(state)
            else:   # only the caller's own transaction: not on this one
                call.finish(error=BarrierError(
                    "unexpected barrier state %r for token %s"
                    % (state, call.token)))

    def _fail(self, tokens, error):
        with self._lock:
            calls = [c for t in tokens for c in self._calls.pop(t, ())]
        for call in calls:
            call.finish(error=error)

    def _failed(self, conn, tokens, exc):
        """Handles an error of the waiting statement; returns "lost" (connect
        again), "again" (issue it again after a delay) or None (issue it
        again now)."""
        code = _sqlstate(exc)
        if code == _SQLSTATE_CANCELED and not _closed(conn):
            return None     # our cancel (or statement_timeout): again, now
        if (_closed(conn) or (code or "").startswith("08")
                or code in ("57P01", "57P02", "57P03")
                or (code is None and isinstance(exc, _connection_errors()))):
            return "lost"
        message = _message(exc)
        if ((code == _SQLSTATE_NOT_PREPARED
             and "shared_preload_libraries" in message)
                or (code == _SQLSTATE_UNDEFINED_FUNCTION
                    and "barrier_wait_any" in message)):
            self._fail(tokens, BarrierWaiterUnavailable(
                "the server cannot serve a tx_barrier Waiter (%s: %s): it "
                "needs barrier_wait_any() (extension version 1.2: CREATE "
                "EXTENSION tx_barrier, or ALTER EXTENSION tx_barrier UPDATE; "
                "not the portable edition) and tx_barrier in "
                "shared_preload_libraries (then restart the server); or "
                "wait with tx_barrier.wait() on a connection of your own"
                % (code, message), code, message))
            return None
        if code in _TOKEN_SQLSTATES:
            try:
                self._isolate(conn, tokens)
            except Exception as exc2:
                return self._failed(conn, tokens, exc2)
            return None
        if code == _SERIALIZATION_FAILURE:
            return "again"
        cur = getattr(exc, "cursor", None)
        mapped = map_error(exc, cur)
        self._fail(tokens, mapped if mapped is not None else exc)
        return None

    def _isolate(self, conn, tokens):
        """One bad token fails a whole call: finds the bad ones by halves,
        looking without sleeping, answers the ended tokens met on the way and
        gives each bad token's callers its error."""
        parts = [list(tokens)]
        while parts:
            part = parts.pop()
            with self._lock:
                part = [t for t in part if t in self._calls]
            if not part:
                continue
            try:
                rows = self._execute(conn, SQL_LOOK_ANY, part)
            except Exception as exc:
                if _sqlstate(exc) not in _TOKEN_SQLSTATES or _closed(conn):
                    raise
                if len(part) == 1:
                    mapped = map_error(exc, None)
                    self._fail(part, mapped if mapped is not None else exc)
                else:
                    half = len(part) // 2
                    parts.append(part[half:])
                    parts.append(part[:half])
                continue
            self._answer(rows)
