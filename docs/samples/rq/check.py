"""Checks what the guide (docs/guides/rq.md) says, against a real
`rq worker --with-scheduler` (started by run.sh) and the real database:

1. commit: the job id is known before COMMIT, the worker is blocked on the
   transaction's lock meanwhile and the report is invisible elsewhere;
   after COMMIT that job renders it;
2. a plain enqueue on a BarrierQueue inside the transaction waits too;
3. rollback: the job is cancelled, not run and not retried, although it
   has a Retry;
4. a transaction still open past the job's barrier_timeout: the job is
   scheduled again (status "scheduled"), the worker runs other jobs
   meanwhile, and after COMMIT the job runs.
"""
import sys
import time

import psycopg2
from rq import Queue
from rq.job import Job
from rq.registry import CanceledJobRegistry, FailedJobRegistry

from jobs import ping, render_report
from models import Report, Session, engine
from producer import queue, redis, request_report
from tx_barrier.rq import OUTCOME_META, WAITS_META

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


def status(job):
    # One snapshot: get_status() alone would read the status again, newer
    # than the meta that refresh() read.
    job.refresh()
    return job.get_status(refresh=False)


def ended(job):
    until("job %s to end" % job.id,
          lambda: status(job) in ("finished", "failed", "canceled"))
    return job.get_status(refresh=False)


# 1. The job id before COMMIT; the worker waits for the COMMIT.
with Session.begin() as session:
    report, job = request_report(session, "quarterly")
    job_id = job.id                          # known inside the transaction
    until("the worker blocked", lambda: blocked_on(job.barrier_token))
    assert query("SELECT count(*) FROM reports WHERE id = %s", report.id) == 0
    report_id = report.id
job = Job.fetch(job_id, connection=redis)
assert ended(job) == "finished", job.exc_info
assert job.result == "rendered report %d: quarterly" % report_id
print("1. job %s known before COMMIT, waited on token %s: %s"
      % (job_id, job.meta["tx_barrier_token"], job.result))

# 2. A BarrierQueue takes the barrier by itself inside the transaction.
with Session.begin() as session:
    report = Report(title="plain enqueue")
    session.add(report)
    session.flush()
    plain = queue.enqueue(render_report, report.id)
    assert plain.barrier_token is not None
    until("the worker blocked", lambda: blocked_on(plain.barrier_token))
assert ended(plain) == "finished", plain.exc_info
print("2. BarrierQueue.enqueue inside the transaction waited on token %s"
      % plain.barrier_token)

# 3. Rollback: cancelled, not run, not retried (it has Retry(max=3)).
try:
    with Session.begin() as session:
        report, job = request_report(session, "rolled back")
        report_id = report.id
        until("the worker blocked", lambda: blocked_on(job.barrier_token))
        raise RuntimeError("out of paper")
except RuntimeError:
    pass
assert ended(job) == "canceled"
assert job.meta[OUTCOME_META] == "aborted"
assert job.id in CanceledJobRegistry(queue=queue)
assert job.id not in FailedJobRegistry(queue=queue)
assert job.retries_left == 3                 # not retried
assert query("SELECT count(*) FROM reports WHERE id = %s", report_id) == 0
print("3. rolled back: job %s %s, outcome %s, retries left %d"
      % (job.id, job.get_status(refresh=False), job.meta[OUTCOME_META], job.retries_left))

# 4. Open past the bound: scheduled again, the worker stays free.
with Session.begin() as session:
    report, job = request_report(session, "slow", barrier_timeout=1)
    report_id = report.id
    until("the job scheduled again", lambda: status(job) == "scheduled"
          and job.meta.get(WAITS_META, 0) >= 1)
    # A plain rq Queue takes no barrier: the job runs at once, on the same
    # worker, while the transaction is still open.
    other = Queue("reports", connection=redis).enqueue(ping)
    assert ended(other) == "finished" and other.result == "pong"
    waits = job.meta[WAITS_META]
assert ended(job) == "finished", job.exc_info
assert job.result == "rendered report %d: slow" % report_id
print("4. still open after 1 s: scheduled again (%d waits), another job ran"
      " meanwhile; after COMMIT: %s" % (waits, job.result))
