"""A Celery app without Django: the worker checks tokens on a DSN."""
import os

import psycopg2
from celery import Celery
from tx_barrier.celery import TransactionBarrierTask

DSN = os.environ.get("INVOICES_DSN", "dbname=invoices")

app = Celery("tasks", broker=os.environ.get("BROKER_URL", "redis://localhost:6379/0"),
             backend=os.environ.get("RESULT_URL", "redis://localhost:6379/1"))
app.conf.task_acks_late = True
app.conf.task_reject_on_worker_lost = True
# Where the worker runs barrier_wait(): a connection to the producer's
# database (or cluster).  The environment variable TX_BARRIER_DSN does the same.
app.conf.tx_barrier_dsn = DSN
# The driver of that connection: psycopg2 if installed, else psycopg 3;
# "psycopg" chooses psycopg 3.
if os.environ.get("WORKER_DRIVER"):
    app.conf.tx_barrier_driver = os.environ["WORKER_DRIVER"]


@app.task(base=TransactionBarrierTask, barrier_timeout=30)
def send_invoice(invoice_id):
    # Runs only after the producer's transaction committed: the row is there.
    with psycopg2.connect(DSN) as conn, conn.cursor() as cur:
        cur.execute("UPDATE invoices SET sent = true WHERE id = %s RETURNING amount",
                    (invoice_id,))
        (amount,) = cur.fetchone()
    conn.close()
    return "sent invoice %d of %s" % (invoice_id, amount)
