"""Checks what the guide (docs/guides/django-celery.md) says, against a real
Celery worker (started by run.sh) and the real database:

1. the view commits: the worker ships the order (it saw the committed row);
2. plain .delay() inside atomic() takes a barrier too: the worker is blocked
   on this transaction's lock until COMMIT, then ships the order;
3. a rollback after the publish: the worker does not run the task, which
   ends in FAILURE with TransactionAborted;
4. eager mode (task_always_eager) gives none of this: the task runs at once
   inside the transaction, sees its uncommitted row, and has run even though
   the transaction then rolls back.
"""
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402

from proj.celery import app  # noqa: E402
from shop.models import Order  # noqa: E402
from shop.tasks import ship_order  # noqa: E402

DEADLINE = 30


def until(what, condition):
    end = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > end:
            sys.exit("timed out waiting for: " + what)
        time.sleep(0.02)


def warehouse():
    try:
        with open(settings.WAREHOUSE_LOG) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def status_elsewhere(order_id):
    """The order's status as another connection sees it (committed data)."""
    import psycopg2
    with psycopg2.connect(dbname=settings.DATABASES["default"]["NAME"]) as c:
        with c.cursor() as cur:
            cur.execute("SELECT status FROM shop_order WHERE id = %s", (order_id,))
            row = cur.fetchone()
    c.close()
    return row[0] if row else None


def blocked_on(token):
    """Whether a worker session sleeps on the lock of token's transaction."""
    import psycopg2
    with psycopg2.connect(dbname=settings.DATABASES["default"]["NAME"]) as c:
        with c.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE l.locktype = 'transactionid' AND NOT l.granted"
                " AND l.transactionid::text = (%s::numeric %% 4294967296)::text"
                " AND a.query LIKE '%%barrier_wait%%'", (token,))
            n = cur.fetchone()[0]
    c.close()
    return n > 0


# 1. The view: saved, spawned, committed; the worker ships the order.
body = Client().post("/orders/", {"item": "book"}).json()
order_id = body["order"]
until("order %d shipped" % order_id, lambda: status_elsewhere(order_id) == "shipped")
assert "ship order %d: book" % order_id in warehouse()
assert app.AsyncResult(body["task"]).get(timeout=DEADLINE) is None
print("1. committed: order %d shipped by the worker, task %s SUCCESS"
      % (order_id, body["task"]))

# 2. Plain .delay() inside atomic(): a barrier is taken automatically.
with transaction.atomic():
    order = Order.objects.create(item="lamp")
    result = ship_order.delay(order.id)
    with connection.cursor() as cur:
        # The same (sub)transaction's token, as the publish took it.
        cur.execute("SELECT barrier_enqueue()::text")
        token = cur.fetchone()[0]
    until("worker blocked on %s" % token, lambda: blocked_on(token))
    assert status_elsewhere(order.id) is None          # not committed yet
    print("2. .delay() in atomic(): worker blocked on token %s before COMMIT" % token)
until("order %d shipped" % order.id, lambda: status_elsewhere(order.id) == "shipped")
result.get(timeout=DEADLINE)
print("2. after COMMIT: order %d shipped" % order.id)


# 3. Rolled back after the publish: the task never runs.
class Rollback(Exception):
    pass


try:
    with transaction.atomic():
        order = Order.objects.create(item="vase")
        result = ship_order.apply_async_with_barrier(args=(order.id,))
        raise Rollback()
except Rollback:
    pass
until("task %s finished" % result.id, lambda: result.state == "FAILURE")
assert type(result.result).__name__ == "TransactionAborted", repr(result.result)
assert not [l for l in warehouse() if l.startswith("ship order %d:" % order.id)]
assert not Order.objects.filter(id=order.id).exists()
print("3. rolled back: task %s not run (%s)" % (result.id, type(result.result).__name__))

# 4. Eager mode: the task runs inside the transaction and after a rollback.
app.conf.task_always_eager = True
try:
    with transaction.atomic():
        order = Order.objects.create(item="chair")
        result = ship_order.apply_async_with_barrier(args=(order.id,))
        # It ran already, on this connection, and saw the uncommitted order:
        assert result.successful() and result.barrier_token is None
        assert "ship order %d: chair" % order.id in warehouse()
        assert status_elsewhere(order.id) is None          # still uncommitted
        raise Rollback()
except Rollback:
    pass
finally:
    app.conf.task_always_eager = False
assert not Order.objects.filter(id=order.id).exists()
assert "ship order %d: chair" % order.id in warehouse()
print("4. eager: the task saw uncommitted order %d and told the warehouse;"
      " the transaction then rolled back, the warehouse line stays" % order.id)
