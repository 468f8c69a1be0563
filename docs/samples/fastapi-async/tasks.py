"""The Celery app (no Django): `celery -A tasks worker`."""
import os

from celery import Celery
from tx_barrier.celery import TransactionBarrierTask

from db import Session, Signup, engine

app = Celery("tasks",
             broker=os.environ.get("BROKER_URL", "redis://localhost:6379/0"),
             backend=os.environ.get("RESULT_URL", "redis://localhost:6379/1"))
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # The worker waits on a connection of this (synchronous) engine's pool.
    tx_barrier_databases={"default": engine},
)


@app.task(base=TransactionBarrierTask)
def send_welcome(signup_id):
    # Runs only once the endpoint's transaction has committed.
    with Session.begin() as session:
        signup = session.get(Signup, signup_id)
        signup.welcomed = True
        return "welcomed %s" % signup.email
