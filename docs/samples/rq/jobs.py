"""The job, and the worker class `rq worker --worker-class jobs.ReportWorker`
runs."""
from tx_barrier.rq import BarrierWorker

from models import Report, Session, engine


class ReportWorker(BarrierWorker):
    # Where the worker runs barrier_wait(): a connection of this engine's
    # pool, in AUTOCOMMIT (a DSN works too: {"default": "dbname=reports"}).
    barrier_databases = {"default": engine}
    barrier_timeout = 10        # seconds one wait may hold the worker
    barrier_retry_delay = 1     # then the job is scheduled again this later


def render_report(report_id):
    # Runs only once the producer's transaction has committed.
    with Session.begin() as session:
        report = session.get(Report, report_id)
        report.rendered = True
        return "rendered report %d: %s" % (report.id, report.title)


def ping():
    return "pong"
