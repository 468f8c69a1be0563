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
        do_something_task.apply_async_with_barrier(args=(model.id,))
        model.save()

``apply_async_with_barrier`` takes a token with ``barrier_enqueue()`` in the
producer's transaction and publishes the task at once, with the token in the
message headers.  The worker, before the task body runs, waits for the
token's transaction to end (``barrier_wait``): on commit the body runs, on
abort :class:`TransactionAborted` is raised instead (errbacks fire), and if
the transaction is still open after ``barrier_timeout`` seconds the task is
retried through Celery's retry machinery, so no worker slot is held for
longer than that.

Plain ``apply_async``/``delay`` on such a task work unchanged: no token, no
waiting.  Celery itself publishes tasks that way for retries, ``link``
callbacks, chains, chords and beat, so refusing them would break all of
those.
"""

from celery import Task
from celery.exceptions import Ignore, Reject, Retry
from celery.utils.log import get_task_logger

from . import (ABORTED, COMMITTED, IN_PROGRESS, BarrierConfigurationError,
               BarrierError, normalize_token)
from . import db as _db

__all__ = [
    "TransactionBarrierTask", "TransactionAborted", "BarrierTimeout",
    "TOKEN_HEADER", "USING_HEADER", "WAITS_HEADER",
]

logger = get_task_logger(__name__)

#: Message header carrying the barrier token (an xid8, as a decimal string).
TOKEN_HEADER = "tx_barrier_token"
#: Message header carrying the database alias the token was taken on.
USING_HEADER = "tx_barrier_using"
#: Message header counting how many times the barrier timed out and the task
#: was sent again.
WAITS_HEADER = "tx_barrier_waits"


class TransactionAborted(Exception):
    """The transaction that spawned the task rolled back (or the savepoint
    it was spawned in did): the task body was not run."""


class BarrierTimeout(BarrierError):
    """The spawning transaction was still open after ``barrier_max_retries``
    waits of ``barrier_timeout`` seconds each."""


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
        ``tx_barrier_databases``); ``None`` means ``"default"``.
    """

    barrier_timeout = 10.0
    barrier_retry_delay = 0
    barrier_error_retry_delay = 1.0
    barrier_max_retries = None
    barrier_on_abort = "raise"
    barrier_using = None

    # --- producer -----------------------------------------------------------

    def apply_async_with_barrier(self, args=None, kwargs=None,
                                 using=None, db_connection=None, **options):
        """Publishes the task now; the worker runs it only once the current
        transaction has committed.

        Takes the same arguments as :meth:`apply_async`, and:

        ``using``
            the Django database alias whose transaction the task depends on
            (default: ``barrier_using`` or ``"default"``); the worker checks
            the token on the database of the same alias.
        ``db_connection``
            a DB-API connection (psycopg2) to take the token on instead of
            Django's; ``using`` then names the worker's database for it.

        Returns the task's ``AsyncResult``, with the token in its
        ``barrier_token`` attribute (``None`` if there was none to take).

        Outside a transaction (autocommit) this is :meth:`apply_async`.  In
        eager mode (``task_always_eager``) the task runs at once, without
        waiting: it would otherwise wait for its own transaction.
        """
        using = using or self.barrier_using
        token = None
        if self.app.conf.task_protocol == 1:
            # Message protocol 1 has no headers: the token would be dropped
            # and the task would run without waiting.
            raise BarrierConfigurationError(
                "transaction barriers need Celery's task message protocol 2 "
                "(task_protocol = 2, the default)")
        if not self.app.conf.task_always_eager:
            token = _db.producer_token(using=using, connection=db_connection)
        if token is not None:
            headers = dict(options.pop("headers", None) or {})
            headers[TOKEN_HEADER] = token
            headers[USING_HEADER] = using
            headers[WAITS_HEADER] = 0
            options["headers"] = headers
        result = self.apply_async(args, kwargs, **options)
        # For logs and tests: the token the worker will wait for, if any.
        result.barrier_token = token
        return result

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
            logger.info("transaction %s aborted, not running", token)
            if self.barrier_on_abort == "ignore":
                raise Ignore()
            raise TransactionAborted(
                "the transaction that spawned %s[%s] was rolled back "
                "(barrier token %s)" % (self.name, request.id, token))
        if state == IN_PROGRESS:
            self._barrier_retry(
                request, token, using, waits,
                BarrierTimeout("transaction %s still in progress after %ss"
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
        sig = self.signature_from_request(
            request, countdown=countdown, retries=request.retries,
            headers={TOKEN_HEADER: token, USING_HEADER: using,
                     WAITS_HEADER: waits + 1})
        try:
            sig.apply_async()
        except Exception as publish_exc:
            raise Reject(publish_exc, requeue=True)
        raise Retry(exc=exc, when=countdown, sig=sig)


def _is_transient(exc):
    """Connection trouble and cancelled statements: worth trying again."""
    candidates = [exc, getattr(exc, "__cause__", None)]
    try:
        import psycopg2
        transient = (psycopg2.OperationalError, psycopg2.InterfaceError)
    except ImportError:
        transient = ()
    try:
        from django.db import utils as dj
        transient += (dj.OperationalError, dj.InterfaceError)
    except ImportError:
        pass
    return any(isinstance(e, transient) for e in candidates if e is not None)

