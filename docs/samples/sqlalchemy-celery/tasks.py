"""The Celery app, configured in code: no Django, no settings module.

Start the worker with ``celery -A tasks worker``.
"""
import os

from celery import Celery
from tx_barrier.celery import TransactionBarrierTask

from models import Order, Session, engine

app = Celery("tasks",
             broker=os.environ.get("BROKER_URL", "redis://localhost:6379/0"),
             backend=os.environ.get("RESULT_URL", "redis://localhost:6379/1"))
app.conf.update(
    task_acks_late=True,                 # a task waiting when its worker
    task_reject_on_worker_lost=True,     # process dies is delivered again
    # Where the worker runs barrier_wait(): a connection of this engine's
    # pool, in AUTOCOMMIT (a DSN works too: tx_barrier_dsn = "dbname=shop").
    tx_barrier_databases={"default": engine},
)


@app.task(base=TransactionBarrierTask)
def ship_order(order_id):
    # Runs only once the producer's transaction has committed.
    with Session.begin() as session:
        order = session.get(Order, order_id)
        if order is None:                # never with a barrier; see eager mode
            return "order %d not found" % order_id
        order.shipped = True
        return "shipped order %d: %s" % (order.id, order.item)


@app.task(base=TransactionBarrierTask)
def print_gift_card(order_id):
    with Session.begin() as session:
        return "gift card for order %d: %s" % (
            order_id, session.get(Order, order_id).gift_note)
