"""The RQ jobs the tests enqueue, and the worker class that the layer's
``rq worker --worker-class rq_jobs.Worker`` runs.  No Django: the jobs use
psycopg2, the worker checks tokens on DSNs.

Environment: PGHOST/PGPORT/PGUSER, TXB_PY_DB, TXB_REDIS_URL,
TXB_PGBOUNCER_PORT.
"""
import os

import psycopg2
from rq import get_current_job

from tx_barrier.rq import TOKEN_META, WAITS_META, BarrierWorker

DB = os.environ.get("TXB_PY_DB", "txb_python")
NOEXT = os.environ.get("TXB_PY_DB_NOEXT", "txb_python_noext")
REDIS_URL = os.environ.get("TXB_REDIS_URL", "redis://127.0.0.1:6379") + "/4"
QUEUE = "txb_rq"


def _dsn(**over):
    params = {k: os.environ.get(v) for k, v in (
        ("host", "PGHOST"), ("port", "PGPORT"), ("user", "PGUSER"))}
    params["dbname"] = DB
    params.update(over)
    return " ".join("%s=%s" % kv for kv in params.items() if kv[1])


class Worker(BarrierWorker):
    barrier_databases = {"default": _dsn(), "noext": _dsn(dbname=NOEXT)}
    if os.environ.get("TXB_PGBOUNCER_PORT"):
        barrier_databases["bouncer"] = _dsn(
            host="127.0.0.1", port=os.environ["TXB_PGBOUNCER_PORT"],
            user="postgres")


def record_item(item_id, key):
    """Reads the producer's row (committed by now) and logs the run."""
    job = get_current_job()
    conn = psycopg2.connect(_dsn())
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT value FROM shop_item WHERE id = %s", (item_id,))
            row = cur.fetchone()
            value = row[0] if row else None
            cur.execute("INSERT INTO shop_runlog (key, what, value, pid) "
                        "VALUES (%s, 'body', %s, %s)", (key, value, os.getpid()))
    finally:
        conn.close()
    return {"value": value, "job_id": job.id,
            "token": job.meta.get(TOKEN_META),
            "waits": job.meta.get(WAITS_META)}


def _log(key, what, value):
    conn = psycopg2.connect(_dsn())
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO shop_runlog (key, what, value, pid) "
                        "VALUES (%s, %s, %s, %s)", (key, what, value,
                                                    os.getpid()))
    finally:
        conn.close()


def record_failure(job, connection, type, value, traceback):
    """on_failure callback: logs the error's class and SQLSTATE."""
    _log(job.args[1], "failure", "%s %s" % (type.__name__,
                                             getattr(value, "sqlstate", None)))


def record_plain(key):
    """A job without a barrier."""
    _log(key, "plain", str(os.getpid()))
    return key
