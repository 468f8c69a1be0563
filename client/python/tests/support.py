"""Shared helpers of the adapter's tests: Django setup, an observer
connection, and polling for a condition with a deadline."""
import gc
import os
import sys
import time

# Celery 5.5's AsyncResult.__del__ unsubscribes from the Redis result
# backend.  Run by the cycle collector in the middle of another Redis
# command on the same connection, it hung a test process (seen once under
# load).  So cycles are collected only where the tests wait (poll()), never
# inside a Celery or Redis call.
gc.disable()

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproj.settings")

import django  # noqa: E402

django.setup()

import psycopg2  # noqa: E402
from django.conf import settings  # noqa: E402

from testproj.celeryapp import app  # noqa: E402,F401

DEADLINE = float(os.environ.get("TXB_PY_DEADLINE", "120"))


def poll(condition, what, timeout=DEADLINE, interval=0.02):
    """Returns condition()'s first true value; fails after timeout seconds."""
    gc.collect()
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError("timed out after %ss waiting for %s"
                                 % (timeout, what))
        time.sleep(interval)


def dbname(alias="default"):
    return settings.DATABASES[alias]["NAME"]


def observer(alias="default"):
    """A separate autocommit connection: sees only committed rows."""
    conn = psycopg2.connect(dbname=dbname(alias))
    conn.autocommit = True
    return conn


def scalar(conn, sql, params=()):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def runs(conn, key, what="body"):
    """How many times a body/callback/errback recorded itself for key."""
    return scalar(conn, "SELECT count(*) FROM shop_runlog "
                        "WHERE key = %s AND what = %s", (key, what))


def run_values(conn, key, what="body"):
    with conn.cursor() as cur:
        cur.execute("SELECT value FROM shop_runlog WHERE key = %s AND what = %s "
                    "ORDER BY id", (key, what))
        return [r[0] for r in cur.fetchall()]


def waiters(conn, token, datname=None):
    """Backends blocked in barrier_wait() on token, on the transaction-id
    lock (wait_event 'transactionid')."""
    return scalar(
        conn,
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND wait_event = 'transactionid' "
        "AND query LIKE %s AND (%s::name IS NULL OR datname = %s::name)",
        ("%%barrier_wait('%s'::xid8%%" % token, datname, datname))


def wait_until_blocked(conn, token, datname=None):
    """Waits until a worker is blocked in barrier_wait on token."""
    return poll(lambda: waiters(conn, token, datname),
                "a worker blocked in barrier_wait(%s)" % token)
