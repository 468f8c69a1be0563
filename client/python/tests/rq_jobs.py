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
REDIS_URL = os.environ.get("TXB_REDIS_URL", "redis://127.0.0.1:6379") + "/4"
QUEUE = "txb_rq"


def _dsn(**over):
    params = {k: os.environ.get(v) for k, v in (
        ("host", "PGHOST"), ("port", "PGPORT"), ("user", "PGUSER"))}
    params["dbname"] = DB
    params.update(over)
    return " ".join("%s=%s" % kv for kv in params.items() if kv[1])


class Worker(BarrierWorker):
    barrier_databases = {"default": _dsn()}
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
