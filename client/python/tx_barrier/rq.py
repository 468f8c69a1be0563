"""RQ jobs that run only after the transaction that enqueued them commits.

Producer::

    from tx_barrier.rq import BarrierQueue, enqueue_with_barrier

    with Session.begin() as session:          # or Django's atomic()
        session.add(order)
        session.flush()
        job = enqueue_with_barrier(queue, send_receipt, order.id)

``enqueue_with_barrier`` takes a token in the open transaction (Django's
``atomic()``, else the SQLAlchemy session or connection with one open;
or ``session=``, ``db_connection=``, ``token=``) and enqueues the job at
once with the token in ``job.meta``.  A :class:`BarrierQueue` does the same
for every plain ``enqueue``/``enqueue_call``/``enqueue_in``/``enqueue_at``
made inside an open transaction.

Worker: ``rq worker --with-scheduler --worker-class
tx_barrier.rq.BarrierWorker QUEUE`` (or a subclass naming its databases).
Before a job with a token runs, the worker waits for the token's
transaction (``barrier_wait``, at most ``barrier_timeout`` seconds):

* committed: the job runs, once, and sees the committed rows;
* aborted: the job never runs and is not retried: it is cancelled (RQ's
  ``CanceledJobRegistry``, status ``canceled``, not the failed registry,
  whatever its ``Retry``), ``job.meta["tx_barrier_outcome"]`` is
  ``"aborted"``, its dependents are not enqueued, and the worker logs one
  INFO line;
* still in progress: the job is scheduled again ``barrier_retry_delay``
  seconds later (RQ's ``ScheduledJobRegistry``, same job id; the worker's
  scheduler, ``--with-scheduler``, enqueues it), so no worker is held for
  longer than ``barrier_timeout``.
"""

import datetime
import inspect
import sys
import traceback

from rq import Queue, SimpleWorker, Worker
from rq.job import JobStatus

from . import (ABORTED, COMMITTED, IN_PROGRESS, BarrierError,
               BarrierTimeout, normalize_token)
from . import db as _db

__all__ = ["enqueue_with_barrier", "BarrierQueue", "BarrierWorkerMixin",
           "BarrierWorker", "BarrierSimpleWorker", "BarrierTimeout",
           "TOKEN_META", "USING_META",
           "WAITS_META", "OUTCOME_META", "TIMEOUT_META"]

# Follow SQLAlchemy sessions' transactions from now on, if it is installed.
_db.sqlalchemy_support()

#: ``job.meta`` keys: the token (an xid8 as a decimal string), the database
#: alias it was taken on, how many times the wait timed out and the job was
#: scheduled again, and ``"aborted"`` once the worker found the producing
#: transaction rolled back.
TOKEN_META = "tx_barrier_token"
USING_META = "tx_barrier_using"
WAITS_META = "tx_barrier_waits"
OUTCOME_META = "tx_barrier_outcome"
#: ``job.meta`` key: this job's ``barrier_timeout``, if the producer set one.
TIMEOUT_META = "tx_barrier_timeout"


def _token(using=None, db_connection=None, session=None, token=None):
    if (db_connection, session, token) != (None, None, None):
        return _db.producer_token(using=using, connection=db_connection,
                                  session=session, token=token)
    found = _db.open_transaction(using)
    if found is None:
        return None
    kind, where = found
    if kind == "django":
        return _db.producer_token(using=using or where)
    return _db.producer_token(using=using, session=where)


def _barrier_meta(meta, token, using):
    meta = dict(meta or {})
    meta.update({TOKEN_META: token, USING_META: using, WAITS_META: 0})
    return meta


def enqueue_with_barrier(queue, f, *args, using=None, db_connection=None,
                         session=None, token=None, barrier_timeout=None,
                         **kwargs):
    """``queue.enqueue(f, *args, **kwargs)``, and the job waits for the
    current transaction.

    ``using`` names the worker's database for the token (an alias of
    the worker's ``barrier_databases``, ``TX_BARRIER_DSN`` for the default,
    or Django's); ``db_connection`` (psycopg2 / psycopg 3), ``session``
    (SQLAlchemy) or ``token`` (taken already, e.g. ``await
    tx_barrier.sqlalchemy.enqueue_async(session)``) say where the token
    comes from; by default, the open transaction.  Function arguments with
    these names go in ``kwargs={...}``, as with RQ's own options.  Outside
    a transaction this is ``queue.enqueue``.  ``barrier_timeout`` replaces
    the worker's for this job.  The job has the token in
    ``job.barrier_token`` (``None`` without one).
    """
    tok = _token(using, db_connection, session, token)
    if tok is None:
        job = queue.enqueue(f, *args, **kwargs)
    else:
        kwargs["meta"] = _barrier_meta(kwargs.get("meta"), tok, using)
        if barrier_timeout is not None:
            kwargs["meta"][TIMEOUT_META] = float(barrier_timeout)
        job = queue.enqueue(f, *args, **kwargs)
    job.barrier_token = tok
    return job


class BarrierQueue(Queue):
    """A Queue whose jobs created inside an open transaction (Django's
    ``atomic()``, a SQLAlchemy session or connection) wait for it: plain
    ``enqueue``, ``enqueue_call``, ``enqueue_in``, ``enqueue_at`` take a
    token as :func:`enqueue_with_barrier` does.  ``barrier_using`` (a
    constructor argument or class attribute) names the worker's alias."""

    barrier_using = None

    def __init__(self, *args, barrier_using=None, **kwargs):
        super().__init__(*args, **kwargs)
        if barrier_using is not None:
            self.barrier_using = barrier_using

    def create_job(self, func, *args, **kwargs):
        meta = kwargs.get("meta") or {}
        if TOKEN_META not in meta:
            tok = _token(self.barrier_using)
            if tok is not None:
                kwargs["meta"] = _barrier_meta(meta, tok, self.barrier_using)
        job = super().create_job(func, *args, **kwargs)
        job.barrier_token = job.meta.get(TOKEN_META)
        return job


class BarrierWorkerMixin:
    """The worker side.  Class attributes (set them in a subclass, which
    ``rq worker --worker-class`` names):

    ``barrier_databases``
        ``{alias: DSN or SQLAlchemy Engine}`` to check tokens on (default
        alias ``"default"``, which also falls back to ``barrier_dsn``, the
        environment variable ``TX_BARRIER_DSN``, then Django's connection).
    ``barrier_timeout``
        seconds one wait may hold the worker (default 10).
    ``barrier_retry_delay``
        seconds until a job whose transaction was still open runs again
        (default 1; RQ's scheduler, ``--with-scheduler``, enqueues it).
    ``barrier_error_retry_delay``
        the same after a database connection error (default 5).
    ``barrier_max_waits``
        how many times a job may be scheduled again after a timed-out wait;
        the next timed-out wait fails it with
        :class:`~tx_barrier.BarrierTimeout` (``0``: the first one does;
        default ``None``: until the transaction ends).

    Errors of the wait itself fail the job (RQ's failed registry, its
    ``Retry`` applies): :class:`~tx_barrier.BarrierExtensionMissing` and
    :class:`~tx_barrier.BarrierTokenError`, with the server's SQLSTATE in
    ``sqlstate``; connection errors schedule the job again instead.
    """

    barrier_databases = None
    barrier_dsn = None
    barrier_driver = None
    barrier_timeout = 10.0
    barrier_retry_delay = 1.0
    barrier_error_retry_delay = 5.0
    barrier_max_waits = None

    def _barrier_conf(self):
        return {"tx_barrier_databases": self.barrier_databases,
                "tx_barrier_dsn": self.barrier_dsn,
                "tx_barrier_driver": self.barrier_driver}

    def perform_job(self, job, queue):
        token = (job.meta or {}).get(TOKEN_META)
        if token is None:
            return super().perform_job(job, queue)
        token = normalize_token(token)
        using = job.meta.get(USING_META)
        waits = int(job.meta.get(WAITS_META) or 0)
        # The job is STARTED (its registry entry is what RQ cleans up if
        # this worker dies during the wait).
        if "remove_from_intermediate_queue" in inspect.signature(
                self.prepare_job_execution).parameters:      # RQ 2
            self.prepare_job_execution(
                job, remove_from_intermediate_queue=len(self.queues) == 1)
        else:
            self.prepare_job_execution(job)
        try:
            timeout = job.meta.get(TIMEOUT_META, self.barrier_timeout)
            state = _db.worker_wait(token, timeout, using=using,
                                    conf=self._barrier_conf())
        except Exception as exc:
            if isinstance(exc, BarrierError) or not _db.is_transient(exc):
                return self._barrier_fail(job, queue, sys.exc_info())
            self.log.warning("job %s: barrier wait failed (%s), trying again "
                             "in %ss", job.id, exc,
                             self.barrier_error_retry_delay)
            return self._barrier_again(job, queue, token, waits, exc,
                                       self.barrier_error_retry_delay)
        if state == COMMITTED:
            return super().perform_job(job, queue)
        if state == ABORTED:
            return self._barrier_abort(job, queue, token)
        if state == IN_PROGRESS:
            return self._barrier_again(
                job, queue, token, waits,
                "the transaction of token %s is still in progress after %ss"
                % (token, timeout), self.barrier_retry_delay)
        return self._barrier_raise(job, queue, BarrierError(
            "unexpected barrier state %r for token %s" % (state, token)))

    def _barrier_again(self, job, queue, token, waits, why, delay):
        """Schedules the job again, or fails it with BarrierTimeout once
        ``barrier_max_waits`` is reached."""
        limit = self.barrier_max_waits
        if limit is not None and waits >= limit:
            return self._barrier_raise(job, queue, BarrierTimeout(
                "gave up on job %s after %d barrier waits: %s"
                % (job.id, waits + 1, why)))
        return self._barrier_defer(job, queue, waits, delay)

    def _barrier_raise(self, job, queue, exc):
        try:
            raise exc
        except BarrierError:
            return self._barrier_fail(job, queue, sys.exc_info())

    def _barrier_release(self, job, queue):
        """Takes the job out of the started registry again."""
        with self.connection.pipeline() as pipe:
            if hasattr(self, "cleanup_execution"):      # RQ 2
                self.cleanup_execution(job, pipeline=pipe)
            else:
                queue.started_job_registry.remove(job, pipeline=pipe)
            self.set_current_job_id(None, pipeline=pipe)
            pipe.execute()

    def _barrier_abort(self, job, queue, token):
        job.meta[OUTCOME_META] = ABORTED
        job.save_meta()
        self._barrier_release(job, queue)
        job.cancel()
        self.log.info("%s: job %s not run: the transaction that produced "
                      "token %s aborted", job.origin, job.id, token)
        return True

    def _barrier_defer(self, job, queue, waits, delay):
        job.meta[WAITS_META] = waits + 1
        job.save_meta()
        self._barrier_release(job, queue)
        when = (datetime.datetime.now(datetime.timezone.utc)
                + datetime.timedelta(seconds=delay))
        with self.connection.pipeline() as pipe:
            # RQ's schedule_job saves the job as it is: STARTED otherwise.
            job.set_status(JobStatus.SCHEDULED, pipeline=pipe)
            queue.schedule_job(job, when, pipeline=pipe)
            pipe.execute()
        self.log.info("%s: job %s waits for its token's transaction: "
                      "scheduled again in %ss", job.origin, job.id, delay)
        return True

    def _barrier_fail(self, job, queue, exc_info):
        """The job fails without running: its ``on_failure`` callback runs,
        then RQ's failure handling (``Retry``, the failed registry)."""
        if job.failure_callback:
            try:
                if hasattr(job, "execute_failure_callback"):     # RQ 2
                    job.execute_failure_callback(self.death_penalty_class,
                                                 *exc_info)
                else:
                    self.execute_failure_callback(job, *exc_info)
            except Exception:
                self.log.exception("job %s: on_failure callback failed",
                                   job.id)
        exc_string = "".join(traceback.format_exception(*exc_info))
        self.handle_job_failure(job, queue=queue, exc_string=exc_string)
        self.handle_exception(job, *exc_info)
        return False


class BarrierWorker(BarrierWorkerMixin, Worker):
    """RQ's forking Worker with the barrier wait before each job."""


class BarrierSimpleWorker(BarrierWorkerMixin, SimpleWorker):
    """RQ's SimpleWorker (no fork; one database connection for all waits)
    with the barrier wait before each job."""
