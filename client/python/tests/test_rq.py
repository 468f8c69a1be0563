"""RQ jobs behind a transaction barrier: a real Redis and a real
``rq worker --with-scheduler --worker-class rq_jobs.Worker`` process
(tools/layers/50-python.sh), producers in Django's atomic(), SQLAlchemy
sessions and psycopg2 connections."""
import os
import signal
import subprocess
import sys
import unittest
import uuid

import support
from support import poll, run_values, runs, wait_until_blocked
import psycopg2
from django.db import transaction
from redis import Redis
from rq import Queue, Retry, Worker
from rq.job import Job
from rq.registry import (CanceledJobRegistry, FailedJobRegistry,
                         ScheduledJobRegistry)

import rq_jobs
import tx_barrier
from sa_app import Item as SaItem, Session, engine
from shop.models import Item
from tx_barrier.rq import (OUTCOME_META, WAITS_META, BarrierQueue,
                           BarrierSimpleWorker, enqueue_with_barrier)

redis = Redis.from_url(rq_jobs.REDIS_URL)


def setUpModule():
    poll(lambda: Worker.all(connection=redis), "an RQ worker to register")


def new_key():
    return uuid.uuid4().hex[:16]


def status(job):
    """The job's status from the same snapshot as its meta and result:
    get_status() alone reads the status again, which the worker may have
    changed since refresh() read the meta."""
    job.refresh()
    return job.get_status(refresh=False)


def finished(job):
    poll(lambda: status(job) in ("finished", "failed", "canceled"),
         "job %s to end (status %s)" % (job.id, job.get_status(refresh=False)))
    return job


def value(job):
    rv = getattr(job, "return_value", None)
    return rv() if callable(rv) else job.result


def rq_log():
    with open(os.environ["TXB_PY_RQ_LOG"], encoding="utf-8",
              errors="replace") as f:
        return f.read()


class RqTest(unittest.TestCase):

    def setUp(self):
        self.obs = support.observer()
        self.addCleanup(self.obs.close)
        self.key = new_key()
        self.queue = Queue(rq_jobs.QUEUE, connection=redis)
        self.bqueue = BarrierQueue(rq_jobs.QUEUE, connection=redis)

    def sa_item(self, session, value):
        item = SaItem(key=self.key, value=value)
        session.add(item)
        session.flush()
        return item.id

    def assert_ran(self, job, expected):
        finished(job)
        self.assertEqual(job.get_status(refresh=False), "finished",
                         job.exc_info)
        out = value(job)
        self.assertEqual(out["value"], expected)
        self.assertEqual(out["job_id"], job.id)
        return out

    def assert_aborted(self, job):
        poll(lambda: status(job) == "canceled", "job %s to be cancelled"
             % job.id)
        self.assertEqual(job.meta.get(OUTCOME_META), "aborted")
        self.assertNotIn(job.id, FailedJobRegistry(queue=self.queue))
        self.assertNotIn(job.id, ScheduledJobRegistry(queue=self.queue))
        self.assertIn(job.id, CanceledJobRegistry(queue=self.queue))
        self.assertEqual(runs(self.obs, self.key), 0)

    # --- commit --------------------------------------------------------

    def test_barrier_queue_inside_session_begin(self):
        with Session.begin() as s:
            item_id = self.sa_item(s, "committed")
            job = self.bqueue.enqueue(rq_jobs.record_item, item_id, self.key)
            self.assertIsNotNone(job.barrier_token)
            wait_until_blocked(self.obs, job.barrier_token)
            self.assertEqual(runs(self.obs, self.key), 0)
            job_id = job.id         # the id, before COMMIT
        out = self.assert_ran(Job.fetch(job_id, connection=redis),
                              "committed")
        self.assertEqual(out["token"], job.barrier_token)
        self.assertEqual(runs(self.obs, self.key), 1)

    def test_enqueue_with_barrier_inside_atomic(self):
        with transaction.atomic():
            item = Item.objects.create(key=self.key, value="django")
            job = enqueue_with_barrier(self.queue, rq_jobs.record_item,
                                       item.id, self.key)
            wait_until_blocked(self.obs, job.barrier_token)
            self.assertEqual(runs(self.obs, self.key), 0)
        self.assert_ran(job, "django")

    def test_barrier_queue_inside_atomic_and_engine_begin(self):
        with transaction.atomic():
            item = Item.objects.create(key=self.key, value="atomic")
            job = self.bqueue.enqueue(rq_jobs.record_item, item.id, self.key)
            wait_until_blocked(self.obs, job.barrier_token)
        self.assert_ran(job, "atomic")
        key2 = new_key()
        with engine.begin() as conn:
            item_id = conn.execute(
                SaItem.__table__.insert().values(key=key2, value="engine")
                .returning(SaItem.__table__.c.id)).scalar_one()
            job = self.bqueue.enqueue_call(rq_jobs.record_item,
                                           args=(item_id, key2))
            self.assertIsNotNone(job.barrier_token)
            wait_until_blocked(self.obs, job.barrier_token)
            self.assertEqual(runs(self.obs, key2), 0)
        self.assert_ran(job, "engine")

    def test_outside_a_transaction_plain_job(self):
        with Session.begin() as s:
            item_id = self.sa_item(s, "plain")
        job = self.bqueue.enqueue(rq_jobs.record_item, item_id, self.key)
        self.assertIsNone(job.barrier_token)
        self.assertIsNone(self.assert_ran(job, "plain")["token"])

    # --- abort: not run, not retried -------------------------------------

    def test_rollback_cancels_without_retry(self):
        with self.assertRaises(ZeroDivisionError):
            with Session.begin() as s:
                item_id = self.sa_item(s, "x")
                job = enqueue_with_barrier(
                    self.queue, rq_jobs.record_item, item_id, self.key,
                    retry=Retry(max=3), on_failure=rq_jobs.record_failure)
                after = self.queue.enqueue(rq_jobs.record_plain, self.key,
                                           depends_on=job)
                wait_until_blocked(self.obs, job.barrier_token)
                1 / 0
        self.assert_aborted(job)
        self.assertEqual(job.retries_left, 3)
        # Cancelled, not failed: no on_failure, and its dependents stay
        # deferred (the cancel and their release would be one step).
        self.assertEqual(runs(self.obs, self.key, "failure"), 0)
        self.assertEqual(status(after), "deferred")
        lines = poll(lambda: [ln for ln in rq_log().splitlines()
                              if job.id in ln and "not run" in ln],
                     "the worker's log line of the abort")
        self.assertIn("token %s" % job.barrier_token, lines[0])
        self.assertNotIn("transaction id", lines[0])
        self.assertNotIn("Traceback", rq_log().split(lines[0], 1)[1][:200])

    def test_savepoint_rolled_back_outer_commits(self):
        with Session.begin() as s:
            self.sa_item(s, "outer")
            nested = s.begin_nested()
            item_id = self.sa_item(s, "inner")
            job = self.bqueue.enqueue(rq_jobs.record_item, item_id, self.key)
            nested.rollback()
        self.assert_aborted(job)

    def test_psycopg2_connection(self):
        conn = psycopg2.connect(dbname=support.dbname())
        try:
            with conn.cursor() as cur:
                cur.execute("INSERT INTO shop_item (key, value) VALUES "
                            "(%s, 'pg2') RETURNING id", (self.key,))
                item_id = cur.fetchone()[0]
            job = enqueue_with_barrier(self.queue, rq_jobs.record_item,
                                       item_id, self.key, db_connection=conn)
            wait_until_blocked(self.obs, job.barrier_token)
            conn.commit()
        finally:
            conn.close()
        self.assert_ran(job, "pg2")

    # --- a transaction open past the bound ---------------------------------

    def test_still_open_is_scheduled_again_not_held(self):
        with Session.begin() as s:
            item_id = self.sa_item(s, "late")
            job = enqueue_with_barrier(self.queue, rq_jobs.record_item,
                                       item_id, self.key, barrier_timeout=0.3)
            # The wait timed out: the job is in the scheduled registry,
            # the worker free ...
            poll(lambda: job.id in ScheduledJobRegistry(queue=self.queue)
                 and status(job) == "scheduled",
                 "the job to be scheduled again")
            # One worker process: another job runs meanwhile.
            plain = self.queue.enqueue(rq_jobs.record_plain, self.key)
            self.assertEqual(value(finished(plain)), self.key)
            # ... and the scheduler brings it back to wait again.
            poll(lambda: (job.refresh() or job.meta.get(WAITS_META, 0)) >= 2,
                 "a second timed-out wait")
            self.assertEqual(runs(self.obs, self.key), 0)
        out = self.assert_ran(job, "late")
        self.assertGreaterEqual(out["waits"], 2)
        self.assertEqual(runs(self.obs, self.key), 1)

    def test_max_waits_fails_with_barrier_timeout(self):
        class Capped(BarrierSimpleWorker):
            barrier_databases = rq_jobs.Worker.barrier_databases
            barrier_max_waits = 1
            barrier_retry_delay = 0
        queue = Queue("txb_rq_capped_" + self.key, connection=redis)
        with Session.begin() as s:
            item_id = self.sa_item(s, "capped")
            job = enqueue_with_barrier(queue, rq_jobs.record_item, item_id,
                                       self.key, barrier_timeout=0,
                                       on_failure=rq_jobs.record_failure)
            # In this process: a wait that times out schedules it again,
            # the second one fails it.
            Capped([queue], connection=redis).work(
                burst=True, logging_level="CRITICAL")
            self.assertEqual(status(job), "scheduled")
            self.assertEqual(job.meta[WAITS_META], 1)
            Capped([queue], connection=redis).work(
                burst=True, with_scheduler=True, logging_level="CRITICAL")
            self.assertEqual(status(job), "failed")
        self.assertIn("BarrierTimeout", job.exc_info)
        self.assertIn("gave up on job %s after 2 barrier waits" % job.id,
                      job.exc_info)
        self.assertEqual(run_values(self.obs, self.key, "failure"),
                         ["BarrierTimeout None"])
        self.assertEqual(runs(self.obs, self.key), 0)

    # --- typed errors --------------------------------------------------

    def test_missing_extension_both_sides(self):
        conn = psycopg2.connect(dbname=rq_jobs.NOEXT)
        try:
            with self.assertRaises(tx_barrier.BarrierExtensionMissing) as cm:
                enqueue_with_barrier(self.queue, rq_jobs.record_item, 0,
                                     self.key, db_connection=conn)
            self.assertEqual(cm.exception.sqlstate, "42883")
            self.assertEqual(cm.exception.database, rq_jobs.NOEXT)
        finally:
            conn.close()
        # Worker side: the token checked on the worker's alias "noext".
        with Session.begin() as s:
            job = enqueue_with_barrier(self.queue, rq_jobs.record_item, 0,
                                       self.key, using="noext",
                                       on_failure=rq_jobs.record_failure)
        finished(job)
        self.assertEqual(job.get_status(refresh=False), "failed")
        self.assertIn("tx_barrier.BarrierExtensionMissing", job.exc_info)
        self.assertEqual(run_values(self.obs, self.key, "failure"),
                         ["BarrierExtensionMissing 42883"])
        self.assertEqual(runs(self.obs, self.key), 0)

    def test_token_error_fails_with_sqlstate(self):
        job = enqueue_with_barrier(self.queue, rq_jobs.record_item, 0,
                                   self.key, token=1 << 62,
                                   on_failure=rq_jobs.record_failure)
        self.assertEqual(job.barrier_token, str(1 << 62))
        finished(job)
        self.assertEqual(job.get_status(refresh=False), "failed")
        self.assertIn("tx_barrier.BarrierTokenError", job.exc_info)
        self.assertEqual(run_values(self.obs, self.key, "failure"),
                         ["BarrierTokenError 22023"])

    # --- the producer dies ---------------------------------------------

    def _producer(self, mode):
        env = dict(os.environ)
        env.pop("DJANGO_SETTINGS_MODULE", None)
        proc = subprocess.Popen(
            [sys.executable, os.path.join(support.HERE, "producer_rq.py"),
             mode, self.key], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env=env, cwd=support.HERE, text=True)
        self.addCleanup(self._reap, proc)
        line = proc.stdout.readline().split()
        self.assertEqual(line[:1], ["job"], "producer did not enqueue")
        return proc, Job.fetch(line[1], connection=redis), line[2]

    @staticmethod
    def _reap(proc):
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()

    def test_killed_after_commit_still_runs(self):
        proc, job, token = self._producer("after-commit")
        self.assertEqual(proc.wait(timeout=support.DEADLINE), -signal.SIGKILL)
        self.assertEqual(self.assert_ran(job, "v-" + self.key)["token"], token)

    def test_killed_before_commit_never_runs(self):
        proc, job, token = self._producer("before-commit")
        wait_until_blocked(self.obs, token)
        proc.send_signal(signal.SIGKILL)
        self.assertEqual(proc.wait(timeout=support.DEADLINE), -signal.SIGKILL)
        self.assert_aborted(job)

    # --- PgBouncer -------------------------------------------------------

    @unittest.skipUnless(os.environ.get("TXB_PGBOUNCER_PORT"), "no PgBouncer")
    def test_through_pgbouncer(self):
        for commit in (True, False):
            with self.subTest(commit=commit):
                self.key = new_key()
                conn = psycopg2.connect(
                    host="127.0.0.1", user="postgres",
                    port=os.environ["TXB_PGBOUNCER_PORT"],
                    dbname=support.dbname())
                try:
                    with conn.cursor() as cur:
                        cur.execute("INSERT INTO shop_item (key, value) "
                                    "VALUES (%s, 'bounced') RETURNING id",
                                    (self.key,))
                        item_id = cur.fetchone()[0]
                    job = enqueue_with_barrier(
                        self.queue, rq_jobs.record_item, item_id, self.key,
                        db_connection=conn, using="bouncer")
                    wait_until_blocked(self.obs, job.barrier_token)
                    conn.commit() if commit else conn.rollback()
                finally:
                    conn.close()
                if commit:
                    self.assert_ran(job, "bounced")
                else:
                    self.assert_aborted(job)


if __name__ == "__main__":
    unittest.main()
