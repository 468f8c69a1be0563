"""Checks the guide's claims with both producers against the running worker:
the worker is blocked on the producer's transaction before COMMIT and sends
the invoice after it; after a ROLLBACK the task is not run."""
import sys
import time

import psycopg
import psycopg2

import producer_psycopg2
import producer_psycopg3
from tasks import DSN

observer = psycopg2.connect(DSN)
observer.autocommit = True


def query(sql, *params):
    with observer.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def until(what, condition, timeout=30):
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            sys.exit("timed out waiting for " + what)
        time.sleep(0.02)


def worker_blocked_on(token):
    return query("SELECT count(*) > 0 FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                 " WHERE l.locktype = 'transactionid' AND NOT l.granted"
                 " AND l.transactionid::text = (%s::numeric %% 4294967296)::text"
                 " AND a.query LIKE '%%barrier_wait%%'", token)


connect = {
    "psycopg2": lambda: psycopg2.connect(DSN),              # autocommit off
    "psycopg 3": lambda: psycopg.connect(DSN),              # autocommit off
}
modules = {"psycopg2": producer_psycopg2, "psycopg 3": producer_psycopg3}

for driver, module in modules.items():
    # COMMIT: the worker waits until then, and then sends the invoice.
    conn = connect[driver]()
    invoice_id, result = module.bill(conn, 100)
    until("worker blocked", lambda: worker_blocked_on(result.barrier_token))
    assert query("SELECT count(*) FROM invoices WHERE id = %s", invoice_id) == 0
    conn.commit()
    assert result.get(timeout=30) == "sent invoice %d of 100" % invoice_id
    assert query("SELECT sent FROM invoices WHERE id = %s", invoice_id) is True
    print("%s: worker blocked on %s until COMMIT, then: %s"
          % (driver, result.barrier_token, result.result))

    # ROLLBACK: the task is published but never runs.
    conn = connect[driver]()
    invoice_id, result = module.bill(conn, 200)
    until("worker blocked", lambda: worker_blocked_on(result.barrier_token))
    conn.rollback()
    until("task failed", lambda: result.state == "FAILURE")
    assert type(result.result).__name__ == "TransactionAborted"
    assert query("SELECT count(*) FROM invoices WHERE id = %s", invoice_id) == 0
    print("%s: rolled back, task %s not run (%s)"
          % (driver, result.id, type(result.result).__name__))
    conn.close()
