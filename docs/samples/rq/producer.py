"""Enqueueing inside the transaction that writes the row."""
import os

from redis import Redis
from rq import Retry
from tx_barrier.rq import BarrierQueue, enqueue_with_barrier

from jobs import render_report
from models import Report, Session

redis = Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
queue = BarrierQueue("reports", connection=redis)


def request_report(session, title, **options):
    """Adds the report and enqueues its job in the session's transaction."""
    report = Report(title=title)
    session.add(report)
    session.flush()                       # report.id is set: INSERT sent
    job = enqueue_with_barrier(queue, render_report, report.id,
                               retry=Retry(max=3), **options)
    return report, job


if __name__ == "__main__":
    with Session.begin() as session:      # BEGIN ... COMMIT
        report, job = request_report(session, "quarterly")
        print("report", report.id, "job", job.id, "token", job.barrier_token)
