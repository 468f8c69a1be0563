"""Checks what the guide (docs/guides/sqlalchemy-celery.md) says, against a
real Celery worker (started by run.sh, no Django) and the real database:

1. a POST to the Flask view: the worker ships the committed order;
2. inside ``with Session.begin():`` the task id is real before COMMIT, the
   worker is blocked on the transaction's lock meanwhile and the order is
   invisible to other connections; after COMMIT the task under that very
   id ships it;
3. an exception after the spawn: the transaction rolls back and the task
   is not run (FAILURE, TransactionAborted);
4. savepoints: a gift card spawned in a released savepoint is printed; one
   spawned in a savepoint rolled back is not run, while the order commits
   and is shipped;
5. eager mode gives none of this: the task runs at once, before COMMIT,
   and has run although the transaction then rolls back.
"""
import sys
import time

import psycopg2

from app import app as flask_app, place_order
from models import Session, engine
from tasks import app

DEADLINE = 30
observer = psycopg2.connect(dbname=engine.url.database)
observer.autocommit = True


def query(sql, *params):
    with observer.cursor() as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
    return row[0] if row else None


def until(what, condition):
    end = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > end:
            sys.exit("timed out waiting for: " + what)
        time.sleep(0.02)


def blocked_on(token):
    """Whether a worker session sleeps on the lock of token's transaction."""
    return query("SELECT count(*) > 0 FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                 " WHERE l.locktype = 'transactionid' AND NOT l.granted"
                 " AND l.transactionid::text = (%s::numeric %% 4294967296)::text"
                 " AND a.query LIKE '%%barrier_wait%%'", token)


def failed_aborted(result):
    until("task %s to fail" % result.id, lambda: result.state == "FAILURE")
    return type(result.result).__name__ == "TransactionAborted"


web = flask_app.test_client()

# 1. The view: written, spawned, committed; the worker ships the order.
body = web.post("/orders", json={"item": "book"}).get_json()
assert app.AsyncResult(body["task"]).get(timeout=DEADLINE) == \
    "shipped order %d: book" % body["order"]
assert query("SELECT shipped FROM orders WHERE id = %s", body["order"]) is True
print("1. POST /orders: task %s shipped order %d" % (body["task"], body["order"]))

# 2. The task id before COMMIT; the worker waits for the COMMIT.
with Session.begin() as session:
    order, shipping, _ = place_order(session, "lamp")
    task_id = shipping.id                  # known inside the transaction
    until("the worker blocked", lambda: blocked_on(shipping.barrier_token))
    assert query("SELECT count(*) FROM orders WHERE id = %s", order.id) == 0
    order_id = order.id
assert app.AsyncResult(task_id).get(timeout=DEADLINE) == \
    "shipped order %d: lamp" % order_id
print("2. task id %s before COMMIT; the worker waited on token %s, then shipped"
      % (task_id, shipping.barrier_token))

# 3. Rollback after the spawn: the task is published but never runs.
try:
    with Session.begin() as session:
        order, shipping, _ = place_order(session, "vase")
        order_id = order.id
        until("the worker blocked", lambda: blocked_on(shipping.barrier_token))
        raise RuntimeError("payment declined")
except RuntimeError:
    pass
assert failed_aborted(shipping), shipping.result
assert query("SELECT count(*) FROM orders WHERE id = %s", order_id) == 0
print("3. rolled back: task %s not run (%s)"
      % (shipping.id, type(shipping.result).__name__))

# 4. Savepoints: released, then rolled back (the note is too long).
body = web.post("/orders", json={"item": "pen", "gift_note": "Happy birthday"}).get_json()
assert app.AsyncResult(body["card_task"]).get(timeout=DEADLINE) == \
    "gift card for order %d: Happy birthday" % body["order"]
body = web.post("/orders", json={"item": "cup", "gift_note": "x" * 41}).get_json()
assert failed_aborted(app.AsyncResult(body["card_task"]))
assert app.AsyncResult(body["task"]).get(timeout=DEADLINE) == \
    "shipped order %d: cup" % body["order"]
assert query("SELECT gift_note IS NULL FROM orders WHERE id = %s", body["order"]) is True
print("4. savepoint released: card printed; savepoint rolled back: card task %s"
      " not run, order %d shipped" % (body["card_task"], body["order"]))

# 5. Eager mode: the body runs inside place_order, before COMMIT, on a
# connection of its own that cannot see the order yet; the rollback that
# follows does not undo that it ran.
app.conf.task_always_eager = True
try:
    with Session.begin() as session:
        order, shipping, _ = place_order(session, "clock")
        assert shipping.barrier_token is None
        assert shipping.result == "order %d not found" % order.id, shipping.result
        raise RuntimeError("payment declined")
except RuntimeError:
    pass
finally:
    app.conf.task_always_eager = False
print("5. eager: the task ran before COMMIT (%r) and the transaction then"
      " rolled back" % shipping.result)
