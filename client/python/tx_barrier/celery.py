"""Celery tasks that run only after the transaction that spawned them commits.

::

    from celery import shared_task
    from django.db import transaction
    from tx_barrier.celery import TransactionBarrierTask, TransactionAborted

    @shared_task(base=TransactionBarrierTask)
    def do_something_task(model_id):
        value = Model.objects.get(id=model_id).value
        ...

    @transaction.atomic
    def kick_off_task(model, value):
        model.value = value
        model.save()
        do_something_task.apply_async_with_barrier(args=(model.id,))

``apply_async_with_barrier`` takes a token with ``barrier_enqueue()`` in the
producer's transaction and publishes the task at once, with the token in the
message headers.  The worker, before the task body runs, waits for the
token's transaction to end (``barrier_wait``): on commit the body runs, on
abort :class:`TransactionAborted` is raised instead (errbacks fire), and if
the transaction is still open after ``barrier_timeout`` seconds the task is
retried through Celery's retry machinery, so no worker slot is held for
longer than that.

Plain ``apply_async``/``delay`` (also through ``.s().delay()``, ``chain``,
``group``, ``chord``) of such a task inside an open Django ``atomic()`` block
get the barrier automatically (setting ``tx_barrier_auto``, default on).
Celery's own publishes -- retries, ``link`` callbacks and chain links sent by
the worker after the body, chord bodies, beat -- happen outside any
transaction (or carry the token already) and are left unchanged.

Signatures and canvases get the barrier explicitly, also with a DB-API
connection, through the module-level :func:`apply_async_with_barrier`.
"""

import contextvars
import logging

from celery import Task
from celery.exceptions import Ignore, Reject, Retry
from celery.utils.log import get_task_logger

from . import (ABORTED, COMMITTED, IN_PROGRESS, BarrierConfigurationError,
               BarrierError, BarrierExtensionMissing, BarrierTimeout,
               normalize_token)
from . import db as _db

# Follow SQLAlchemy sessions' transactions from now on, if it is installed.
_db.sqlalchemy_support()

__all__ = [
    "TransactionBarrierTask", "TransactionAborted", "BarrierTimeout",
    "BarrierExtensionMissing", "apply_async_with_barrier",
    "TOKEN_HEADER", "USING_HEADER", "WAITS_HEADER", "HEADERS_HEADER",
    "PUBLISH_RETRY_POLICY",
]

logger = get_task_logger(__name__)

#: Message header carrying the barrier token (an xid8, as a decimal string).
TOKEN_HEADER = "tx_barrier_token"
#: Message header carrying the database alias the token was taken on.
USING_HEADER = "tx_barrier_using"
#: Message header counting how many times the barrier timed out and the task
#: was sent again.
WAITS_HEADER = "tx_barrier_waits"
#: Message header listing the names of the caller's own headers, so that a
#: barrier retry sends them again (Celery 5.2 keeps no copy of them).
HEADERS_HEADER = "tx_barrier_headers"

#: How long a barrier publish may retry an unreachable broker while the
#: producer's transaction holds its locks: 3 attempts, 0.1 s apart (about
#: half a second plus the broker's connect timeouts).  A ``retry_policy``
#: (or ``retry=False``) given by the caller wins; the Celery setting
#: ``tx_barrier_publish_retry_policy`` replaces the default.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0,
                        "interval_step": 0.1, "interval_max": 0.1}

# The token (and alias) a module-level apply_async_with_barrier() took, for
# the barrier tasks its canvas publishes synchronously: the first tasks.
_explicit = contextvars.ContextVar("tx_barrier_explicit", default=None)


class TransactionAborted(Exception):
    """The transaction that spawned the task rolled back (or the savepoint
    it was spawned in did): the task body was not run."""


class _AbortLogFilter(logging.Filter):
    """Turns the worker's ERROR-with-traceback record of a task that ended in
    TransactionAborted into one INFO line.  Celery 5.2 wraps the exception
    (billiard's ExceptionWithTraceback), so ``throws`` does not match it."""

    def filter(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        exc = getattr(exc, "exc", exc)
        if not isinstance(exc, TransactionAborted):
            return True
        data = getattr(record, "data", None) or {}
        record.levelno = logging.INFO
        record.levelname = "INFO"
        record.exc_info = None
        record.exc_text = None
        record.msg = "Task %s[%s] not run: %s"
        record.args = (data.get("name"), data.get("id"), exc)
        return True


logging.getLogger("celery.app.trace").addFilter(_AbortLogFilter())


def _with_publish_policy(app, options):
    if "retry_policy" not in options:
        policy = app.conf.get("tx_barrier_publish_retry_policy")
        options["retry_policy"] = dict(policy if policy is not None
                                       else PUBLISH_RETRY_POLICY)
    return options


_ENSURE_KEYS = ("max_retries", "interval_start", "interval_step",
                "interval_max")


def _bounded_publish(app, options, publish):
    """Runs publish(options) with a producer whose broker connection was
    made under the publish's retry policy: kombu's own connect, used
    otherwise, retries for several seconds whatever ``retry_policy`` says."""
    if options.get("producer") is not None:
        return publish(options)
    if options.get("retry") is False:
        ensure = {"max_retries": 0}
    else:
        policy = options.get("retry_policy") or {}
        ensure = {k: policy[k] for k in _ENSURE_KEYS if k in policy}
    with app.producer_or_acquire(None) as producer:
        producer.connection.ensure_connection(**ensure)
        options["producer"] = producer
        return publish(options)


def _barrier_headers(options, token, using):
    headers = dict(options.pop("headers", None) or {})
    own = [k for k in headers if not k.startswith("tx_barrier_")]
    headers[TOKEN_HEADER] = token
    headers[USING_HEADER] = using
    headers[WAITS_HEADER] = 0
    headers[HEADERS_HEADER] = own
    options["headers"] = headers
    return options


def apply_async_with_barrier(sig_or_canvas, using=None, db_connection=None,
                             session=None, token=None, **options):
    """Publishes a signature, chain, group or chord now; its first tasks
    (the first of a chain, every task of a group or of a chord's header) run
    only once the current transaction has committed; when it aborts they
    fail with :class:`TransactionAborted`, their errbacks run and nothing
    downstream is sent.

    ``using`` / ``db_connection`` / ``session`` / ``token`` are those of
    :meth:`TransactionBarrierTask.apply_async_with_barrier`; the other
    keyword arguments go to the canvas's ``apply_async``.  Every first task
    must be a :class:`TransactionBarrierTask` (others would not wait):
    :class:`BarrierConfigurationError` otherwise, before anything is sent.
    Returns the canvas's result, with ``barrier_token`` set.
    """
    app = sig_or_canvas.app
    for task_name in _first_task_names(sig_or_canvas):
        task = app.tasks.get(task_name)
        if task is None or not isinstance(task, TransactionBarrierTask):
            raise BarrierConfigurationError(
                "task %r is not a TransactionBarrierTask: it would not wait "
                "for the transaction" % (task_name,))
    if app.conf.task_protocol == 1:
        raise BarrierConfigurationError(
            "transaction barriers need Celery's task message protocol 2 "
            "(task_protocol = 2, the default)")
    explicit = (db_connection, session, token) != (None, None, None)
    if using is None and not explicit:
        using = _db.open_atomic_alias()
    if app.conf.task_always_eager:
        token = None
    else:
        token = _db.producer_token(using=using, connection=db_connection,
                                   session=session, token=token)
    if token is not None:
        _with_publish_policy(app, options)
    mark = _explicit.set((token, using) if token is not None else False)
    try:
        if token is not None:
            result = _bounded_publish(
                app, options, lambda o: sig_or_canvas.apply_async(**o))
        else:
            result = sig_or_canvas.apply_async(**options)
    finally:
        _explicit.reset(mark)
    result.barrier_token = token
    return result


def _first_task_names(sig):
    """Names of the tasks a canvas publishes first."""
    from celery import canvas
    if isinstance(sig, canvas._chain):
        return _first_task_names(sig.tasks[0]) if sig.tasks else []
    if isinstance(sig, canvas.chord):
        return _first_task_names(sig.tasks)
    if isinstance(sig, canvas.group):
        names = []
        for s in sig.tasks:
            names.extend(_first_task_names(s))
        return names
    if isinstance(sig, (list, tuple)):
        names = []
        for s in sig:
            names.extend(_first_task_names(s))
        return names
    return [sig["task"]]


class TransactionBarrierTask(Task):
    """Base class for tasks that wait for their producer's transaction.

    Attributes, settable as ``@shared_task(base=TransactionBarrierTask,
    barrier_timeout=30)`` or in a subclass:

    ``barrier_timeout``
        seconds one ``barrier_wait`` in the worker may block (default 10).
        ``None`` waits without limit: only for dedicated workers.
    ``barrier_retry_delay``
        countdown, in seconds, of the retry sent when the wait timed out
        (default 0: the wait itself was the delay).
    ``barrier_error_retry_delay``
        countdown of the retry sent when the worker could not reach the
        database (connection errors, cancelled statements; default 1).
    ``barrier_max_retries``
        how many retries (timed-out waits and connection errors) before
        failing with :class:`BarrierTimeout` (default ``None``: until the
        transaction ends).  Barrier retries do not count towards Celery's
        ``max_retries``/``request.retries``.
    ``barrier_on_abort``
        ``"raise"`` (default): raise :class:`TransactionAborted`, so the task
        is recorded as failed and ``link_error`` errbacks run; ``"ignore"``:
        drop the task silently (Celery's ``Ignore``: no state, no errback).
    ``barrier_using``
        default database alias (Django alias, or a key of the Celery setting
        ``tx_barrier_databases``); ``None``: the alias of the open
        ``atomic()`` block, else ``"default"``.
    ``barrier_auto``
        ``True`` (default; the Celery setting ``tx_barrier_auto`` can turn
        it off for all tasks): plain ``apply_async``/``delay`` inside an
        open ``atomic()`` block take a barrier.  ``False``: they publish
        at once and log a warning naming ``apply_async_with_barrier``.
        ``apply_async(..., barrier=False)`` opts one publish out, silently.
    """

    throws = (TransactionAborted,)

    barrier_timeout = 10.0
    barrier_retry_delay = 0
    barrier_error_retry_delay = 1.0
    barrier_max_retries = None
    barrier_on_abort = "raise"
    barrier_using = None
    barrier_auto = True

    # --- producer -----------------------------------------------------------

    def apply_async_with_barrier(self, args=None, kwargs=None,
                                 using=None, db_connection=None,
                                 session=None, token=None, **options):
        """Publishes the task now; the worker runs it only once the current
        transaction has committed.

        Takes the same arguments as :meth:`apply_async`, and:

        ``using``
            the Django database alias whose transaction the task depends on
            (default: ``barrier_using`` or ``"default"``); the worker checks
            the token on the database of the same alias.
        ``db_connection``
            a DB-API connection (psycopg2, psycopg 3) to take the token on
            instead of Django's; ``using`` then names the worker's database
            for it.
        ``session``
            a SQLAlchemy ``Session`` or ``Connection`` to take the token on
            (default: the one with a transaction open in this thread or
            asyncio task, when no ``atomic()`` block is open).
        ``token``
            a token taken already (``await
            tx_barrier.sqlalchemy.enqueue_async(session)``,
            ``tx_barrier.aio.enqueue(conn)``): published as it is.

        Returns the task's ``AsyncResult``, with the token in its
        ``barrier_token`` attribute (``None`` if there was none to take).

        Outside a transaction (autocommit) this is :meth:`apply_async`.  In
        eager mode (``task_always_eager``) the task runs at once, without
        waiting: it would otherwise wait for its own transaction.
        """
        using = using or self.barrier_using
        if using is None and (db_connection, session, token) == (None,) * 3:
            using = _db.open_atomic_alias()
        if self.app.conf.task_protocol == 1:
            # Message protocol 1 has no headers: the token would be dropped
            # and the task would run without waiting.
            raise BarrierConfigurationError(
                "transaction barriers need Celery's task message protocol 2 "
                "(task_protocol = 2, the default)")
        if self.app.conf.task_always_eager:
            token = None
        else:
            token = _db.producer_token(using=using, connection=db_connection,
                                       session=session, token=token)
        if token is not None:
            _barrier_headers(options, token, using)
            _with_publish_policy(self.app, options)
        options["barrier"] = token is not None
        result = self.apply_async(args, kwargs, **options)
        # For logs and tests: the token the worker will wait for, if any.
        result.barrier_token = token
        return result

    def apply_async(self, args=None, kwargs=None, task_id=None, producer=None,
                    link=None, link_error=None, shadow=None, **options):
        """Celery's ``apply_async``; inside an open ``atomic()`` block (and
        not already carrying a token, nor a retry) it takes a barrier, as
        :meth:`apply_async_with_barrier` does (see ``barrier_auto``)."""
        barrier = options.pop("barrier", None)
        headers = options.get("headers") or {}
        explicit = _explicit.get()
        fresh = barrier is True
        if (barrier is None and TOKEN_HEADER not in headers
                and "retries" not in options):
            if explicit:
                token, using = explicit
                _barrier_headers(options, token, using)
            elif explicit is None:
                fresh = self._barrier_auto(options)
        options.update(producer=producer, link=link, link_error=link_error,
                       shadow=shadow)

        def publish(opts):
            return super(TransactionBarrierTask, self).apply_async(
                args, kwargs, task_id=task_id, **opts)
        if fresh:
            return _bounded_publish(self.app, options, publish)
        return publish(options)

    def _barrier_auto(self, options):
        """Adds a barrier to a plain publish inside atomic(); True if it
        did."""
        if self.app.conf.task_always_eager or self.app.conf.task_protocol == 1:
            return False
        found = _db.open_transaction(self.barrier_using)
        if found is None:
            return False
        kind, where = found
        using = self.barrier_using or (where if kind == "django" else None)
        auto = self.app.conf.get("tx_barrier_auto")
        if not self.barrier_auto or auto is False:
            logger.warning(
                "%s published inside %s without a barrier: it may run "
                "before COMMIT or after a rollback; use "
                "apply_async_with_barrier() (or an on-commit hook)",
                self.name, "transaction.atomic()" if kind == "django"
                else "a SQLAlchemy transaction")
            return False
        if kind == "django":
            token = _db.producer_token(using=using)
        else:
            token = _db.producer_token(using=using, session=where)
        if token is not None:
            _barrier_headers(options, token, using)
            _with_publish_policy(self.app, options)
            return True
        return False

    # --- worker -------------------------------------------------------------

    def __call__(self, *args, **kwargs):
        request = self.request
        token = request.get(TOKEN_HEADER)
        if (token is not None and not request.called_directly
                and not request.is_eager):
            self._barrier_pass(request, normalize_token(token))
        return super().__call__(*args, **kwargs)

    def _barrier_pass(self, request, token):
        """Returns if the body may run; raises otherwise."""
        using = request.get(USING_HEADER)
        waits = int(request.get(WAITS_HEADER) or 0)
        try:
            state = _db.worker_wait(token, self.barrier_timeout, using=using,
                                    conf=self.app.conf)
        except BarrierError:
            raise
        except Exception as exc:
            if not _is_transient(exc):
                raise
            logger.warning("barrier wait failed (%s), retrying", exc)
            self._barrier_retry(request, token, using, waits, exc,
                                self.barrier_error_retry_delay)
        if state == COMMITTED:
            return
        if state == ABORTED:
            logger.info("barrier token %s: its transaction was rolled back, "
                        "not running", token)
            if self.barrier_on_abort == "ignore":
                raise Ignore()
            raise TransactionAborted(
                "the transaction that spawned %s[%s] was rolled back "
                "(barrier token %s)" % (self.name, request.id, token))
        if state == IN_PROGRESS:
            self._barrier_retry(
                request, token, using, waits,
                BarrierTimeout("the transaction of barrier token %s is still "
                               "in progress after %ss"
                               % (token, self.barrier_timeout)),
                self.barrier_retry_delay)
        raise BarrierError("unexpected barrier state %r for token %s"
                           % (state, token))

    def _barrier_retry(self, request, token, using, waits, exc, countdown):
        """Sends the task again, unchanged but for the wait counter, and
        tells the worker it is being retried (Celery's ``Retry``)."""
        limit = self.barrier_max_retries
        if limit is not None and waits >= limit:
            raise BarrierTimeout(
                "gave up on %s[%s] after %d barrier retries: %s"
                % (self.name, request.id, waits, exc))
        # The request's headers are the ones Celery keeps (5.3+); the names
        # in HEADERS_HEADER recover the caller's own on older versions.
        headers = dict(request.headers or {})
        own = request.get(HEADERS_HEADER) or []
        for name in own:
            if name not in headers:
                headers[name] = request.get(name)
        headers.update({TOKEN_HEADER: token, USING_HEADER: using,
                        WAITS_HEADER: waits + 1, HEADERS_HEADER: own})
        sig = self.signature_from_request(
            request, countdown=countdown, retries=request.retries,
            headers=headers)
        try:
            sig.apply_async()
        except Exception as publish_exc:
            raise Reject(publish_exc, requeue=True)
        raise Retry(exc=exc, when=countdown, sig=sig)


_is_transient = _db.is_transient
