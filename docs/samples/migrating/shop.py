"""A minimal Django + Celery setup for the migration sample: one table,
the same task before (a plain Celery task) and after (a barrier task)."""
import os

import django
from celery import Celery
from django.conf import settings

if not settings.configured:
    settings.configure(DATABASES={"default": {
        "ENGINE": "django.db.backends.postgresql", "NAME": os.environ["PGDATABASE"],
        "HOST": os.environ.get("PGHOST", ""), "PORT": os.environ.get("PGPORT", ""),
        "USER": os.environ.get("PGUSER", "")}})
    django.setup()

from django.db import connection  # noqa: E402
from tx_barrier.celery import TransactionBarrierTask  # noqa: E402

redis = os.environ.get("REDIS_URL", "redis://localhost:6379")
app = Celery("shop", broker=redis + "/0", backend=redis + "/1")


def create_order(item):
    with connection.cursor() as cur:
        cur.execute("INSERT INTO orders (item) VALUES (%s) RETURNING id", [item])
        return cur.fetchone()[0]


def mark_shipped(order_id):
    with connection.cursor() as cur:
        cur.execute("UPDATE orders SET shipped = true WHERE id = %s RETURNING id", [order_id])
        assert cur.fetchone(), "order %d not found" % order_id


@app.task
def ship(order_id):                                     # before
    mark_shipped(order_id)


@app.task(base=TransactionBarrierTask)
def ship_with_barrier(order_id):                        # after
    mark_shipped(order_id)
