"""The Celery application: one task that ships an order."""
import os

import psycopg2
from celery import Celery
from tx_barrier.celery import TransactionBarrierTask

app = Celery("tasks", broker=os.environ.get("BROKER_URL", "redis://localhost:6379/0"))
# Where the worker checks tokens: the producer's database (libpq's PG*
# variables apply, as for psql).
app.conf.tx_barrier_dsn = "dbname=shop"


@app.task(base=TransactionBarrierTask)
def ship(order_id):
    # Runs only after the producer's transaction has committed: the row is there.
    with psycopg2.connect("dbname=shop") as conn, conn.cursor() as cur:
        cur.execute("UPDATE orders SET status = 'shipped' WHERE id = %s RETURNING id",
                    (order_id,))
        print(f"shipped order {cur.fetchone()[0]}")
