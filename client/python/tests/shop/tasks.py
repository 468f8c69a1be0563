"""Tasks the tests spawn.  Each body records that it ran in RunLog."""
import os

from celery import shared_task
from django.db import transaction

from tx_barrier.celery import TOKEN_HEADER, WAITS_HEADER, TransactionBarrierTask

from .models import Item, RunLog


def _log(key, what, value=None):
    RunLog.objects.create(key=key, what=what, value=value, pid=os.getpid())


def _record(task, item_id, key, using="default"):
    """Reads the producer's row, which must be committed by now, and says
    what the task saw."""
    value = Item.objects.using(using).get(id=item_id).value
    _log(key, "body", value)
    return {
        "value": value,
        "token": task.request.get(TOKEN_HEADER),
        "waits": task.request.get(WAITS_HEADER),
        "retries": task.request.retries,
        "tenant": task.request.get("x_tenant"),
        "eager": bool(task.request.is_eager or task.request.called_directly),
    }


@shared_task(base=TransactionBarrierTask, bind=True)
def record_item(self, item_id, key, using="default"):
    return _record(self, item_id, key, using)


@shared_task(base=TransactionBarrierTask, bind=True, barrier_timeout=0.5)
def record_item_impatient(self, item_id, key):
    """Gives up each barrier wait after 0.5 s: retried until the commit."""
    return _record(self, item_id, key)


@shared_task(base=TransactionBarrierTask, bind=True, barrier_timeout=0.5,
             barrier_max_retries=2, barrier_error_retry_delay=0.1)
def record_item_give_up(self, item_id, key):
    """Fails with BarrierTimeout after two retries."""
    return _record(self, item_id, key)


@shared_task(base=TransactionBarrierTask, bind=True, barrier_on_abort="ignore")
def record_item_quiet(self, item_id, key):
    """Dropped silently when the transaction aborts."""
    return _record(self, item_id, key)


@shared_task
def record_result(result, key):
    """A link= callback: runs with the parent's return value."""
    _log(key, "callback", result["value"])
    return result["value"]


@shared_task
def record_error(request, exc, traceback, key):
    """A link_error= errback: sees the exception the parent raised."""
    _log(key, "errback", type(exc).__name__)


@shared_task(base=TransactionBarrierTask)
def do_something_task(model_id, key):
    """The task of the README's example."""
    value = Item.objects.get(id=model_id).value
    _log(key, "body", value)
    return value


@shared_task(base=TransactionBarrierTask, bind=True, max_retries=3)
def retry_in_atomic(self, key):
    """Retries itself once from inside an atomic() block that the retry
    rolls back: Celery's retry publish must not take a barrier there."""
    with transaction.atomic():
        _log(key, "attempt", str(self.request.retries))
        if self.request.retries == 0:
            raise self.retry(countdown=0)
    return self.request.retries


@shared_task(base=TransactionBarrierTask, bind=True, barrier_auto=False)
def record_item_warned(self, item_id, key):
    """barrier_auto off: a plain publish inside atomic() only warns."""
    return _record(self, item_id, key)


@shared_task(base=TransactionBarrierTask, bind=True)
def record_value(self, value, key):
    """A barrier task for canvases: logs and returns value."""
    _log(key, "body", str(value))
    return {"value": str(value), "token": self.request.get(TOKEN_HEADER)}


@shared_task
def plain_record_value(value, key):
    _log(key, "plain", str(value))
    return value
