"""TransactionBarrierTask end to end: a real PostgreSQL, a real Redis broker
and a real Celery worker process (started by tools/layers/50-python.sh).

Every test uses its own key; the worker records each body, callback and
errback run in shop_runlog, which the tests read on a separate connection.
"""
import os
import signal
import subprocess
import sys
import unittest
import uuid

import support
from support import poll, runs, run_values, wait_until_blocked
import psycopg2
from celery.states import READY_STATES
from django.db import transaction

from shop.models import Item
from shop import tasks
from tx_barrier.celery import (BarrierTimeout, TOKEN_HEADER,
                               TransactionAborted)
import tx_barrier

app = support.app
TIMEOUT = support.DEADLINE


def setUpModule():
    # A worker must be up and consuming before anything is timed.
    poll(lambda: app.control.ping(timeout=0.5), "a Celery worker to answer")


def outcome(result, propagate=True):
    """The task's return value, or the exception it failed with (raised if
    propagate).  Polls the result backend with a deadline rather than
    AsyncResult.get(), whose Redis pub/sub wait does not always honour its
    timeout in this Celery/redis-py pairing."""
    poll(lambda: result.state in READY_STATES,
         "task %s to finish (state %s)" % (result.id, result.state))
    value = result.result
    if propagate and result.state != "SUCCESS":
        raise AssertionError("task %s ended %s: %r"
                             % (result.id, result.state, value))
    return value


def new_key():
    return uuid.uuid4().hex[:16]


class BarrierTaskTest(unittest.TestCase):

    def setUp(self):
        self.obs = support.observer()
        self.key = new_key()

    def tearDown(self):
        self.obs.close()

    def get(self, result, propagate=True):
        return outcome(result, propagate)

    # --- the three guarantees ---------------------------------------------

    def test_waits_for_commit_then_runs_once(self):
        with transaction.atomic():
            item = Item.objects.create(key=self.key, value="committed value")
            r = tasks.record_item.apply_async_with_barrier(
                args=(item.id, self.key))
            self.assertIsNotNone(r.barrier_token)
            # The worker has the task and is blocked on our transaction ...
            wait_until_blocked(self.obs, r.barrier_token)
            # ... and has not run the body.
            self.assertEqual(runs(self.obs, self.key), 0)
            self.assertEqual(r.state, "PENDING")
        out = self.get(r)
        self.assertEqual(out["value"], "committed value")
        self.assertEqual(out["token"], r.barrier_token)
        self.assertEqual(out["waits"], 0)
        self.assertEqual(run_values(self.obs, self.key), ["committed value"])

    def test_rollback_never_runs_errback_sees_aborted(self):
        class Boom(Exception):
            pass
        with self.assertRaises(Boom):
            with transaction.atomic():
                item = Item.objects.create(key=self.key, value="x")
                r = tasks.record_item.apply_async_with_barrier(
                    args=(item.id, self.key),
                    link=tasks.record_result.s(self.key),
                    link_error=tasks.record_error.s(self.key))
                wait_until_blocked(self.obs, r.barrier_token)
                raise Boom()
        exc = self.get(r, propagate=False)
        self.assertIsInstance(exc, TransactionAborted)
        self.assertEqual(r.state, "FAILURE")
        poll(lambda: runs(self.obs, self.key, "errback"), "the errback")
        self.assertEqual(run_values(self.obs, self.key, "errback"),
                         ["TransactionAborted"])
        self.assertEqual(runs(self.obs, self.key, "body"), 0)
        self.assertEqual(runs(self.obs, self.key, "callback"), 0)

    def test_savepoint_rolled_back_is_aborted(self):
        with transaction.atomic():
            Item.objects.create(key=self.key, value="outer")
            try:
                with transaction.atomic():
                    item = Item.objects.create(key=self.key, value="inner")
                    r = tasks.record_item.apply_async_with_barrier(
                        args=(item.id, self.key))
                    raise ValueError("roll the savepoint back")
            except ValueError:
                pass
        # The outer transaction committed, the savepoint did not.
        self.assertEqual(Item.objects.filter(key=self.key).count(), 1)
        self.assertIsInstance(self.get(r, propagate=False), TransactionAborted)
        self.assertEqual(runs(self.obs, self.key), 0)

    def test_released_savepoint_follows_commit(self):
        with transaction.atomic():
            with transaction.atomic():
                item = Item.objects.create(key=self.key, value="inner")
                r = tasks.record_item.apply_async_with_barrier(
                    args=(item.id, self.key))
            wait_until_blocked(self.obs, r.barrier_token)
            self.assertEqual(runs(self.obs, self.key), 0)
        self.assertEqual(self.get(r)["value"], "inner")

    # --- the web process dies ----------------------------------------------

    def _producer(self, mode):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (os.path.dirname(support.HERE),
                        env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(
            [sys.executable, os.path.join(support.HERE, "producer.py"),
             mode, self.key],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
            cwd=support.HERE, text=True)
        self.addCleanup(self._reap, proc)
        line = proc.stdout.readline().split()
        self.assertEqual(line[:1], ["task"], "producer did not publish")
        return proc, app.AsyncResult(line[1]), line[2]

    @staticmethod
    def _reap(proc):
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()

    def test_killed_after_commit_still_runs(self):
        proc, r, token = self._producer("after-commit")
        self.assertEqual(proc.wait(timeout=TIMEOUT), -signal.SIGKILL)
        out = self.get(r)
        self.assertEqual(out["value"], "v-" + self.key)
        self.assertEqual(out["token"], token)
        self.assertEqual(runs(self.obs, self.key), 1)
        # The task the on_commit way was never sent: the process died first.
        self.assertEqual(runs(self.obs, self.key + "-on-commit"), 0)

    def test_killed_before_commit_never_runs(self):
        proc, r, token = self._producer("before-commit")
        wait_until_blocked(self.obs, token)
        proc.send_signal(signal.SIGKILL)
        self.assertEqual(proc.wait(timeout=TIMEOUT), -signal.SIGKILL)
        self.assertIsInstance(self.get(r, propagate=False), TransactionAborted)
        self.assertEqual(runs(self.obs, self.key), 0)
        self.assertEqual(Item.objects.filter(key=self.key).count(), 0)

    # --- long transactions ----------------------------------------------------

    def test_timeout_retries_then_runs_after_late_commit(self):
        with transaction.atomic():
            item = Item.objects.create(key=self.key, value="late")
            r = tasks.record_item_impatient.apply_async_with_barrier(
                args=(item.id, self.key))
            # The wait timed out and the task was sent again ...
            poll(lambda: r.state == "RETRY", "the task to be retried")
            # ... and the new delivery waits again.
            wait_until_blocked(self.obs, r.barrier_token)
            self.assertEqual(runs(self.obs, self.key), 0)
        out = self.get(r)
        self.assertEqual(out["value"], "late")
        self.assertGreaterEqual(out["waits"], 1)
        self.assertEqual(out["retries"], 0)     # Celery's own count untouched
        self.assertEqual(runs(self.obs, self.key), 1)

    def test_gives_up_after_barrier_max_retries(self):
        with transaction.atomic():
            item = Item.objects.create(key=self.key, value="never")
            r = tasks.record_item_give_up.apply_async_with_barrier(
                args=(item.id, self.key))
            exc = self.get(r, propagate=False)
        self.assertIsInstance(exc, BarrierTimeout)
        self.assertEqual(runs(self.obs, self.key), 0)

    def test_unreachable_database_is_retried_not_run(self):
        conn = psycopg2.connect(dbname=support.dbname())
        try:
            with conn.cursor() as cur:
                cur.execute("INSERT INTO shop_item (key, value) "
                            "VALUES (%s, 'x') RETURNING id", (self.key,))
                item_id = cur.fetchone()[0]
            r = tasks.record_item_give_up.apply_async_with_barrier(
                args=(item_id, self.key), db_connection=conn,
                using="unreachable")
            conn.commit()
        finally:
            conn.close()
        exc = self.get(r, propagate=False)
        self.assertIsInstance(exc, BarrierTimeout)
        self.assertIn("after 2 barrier retries", str(exc))
        self.assertEqual(runs(self.obs, self.key), 0)

    # --- no barrier -------------------------------------------------------------

    def test_autocommit_behaves_like_apply_async(self):
        item = Item.objects.create(key=self.key, value="autocommit")
        r = tasks.record_item.apply_async_with_barrier(args=(item.id, self.key))
        self.assertIsNone(r.barrier_token)
        out = self.get(r)
        self.assertEqual(out["value"], "autocommit")
        self.assertIsNone(out["token"])

    def test_plain_apply_async_outside_atomic_works_unchanged(self):
        item = Item.objects.create(key=self.key, value="plain")
        r = tasks.record_item.delay(item.id, self.key)
        out = self.get(r)
        self.assertIsNone(out["token"])
        self.assertEqual(out["value"], "plain")

    def test_eager_mode_runs_at_once_inside_the_transaction(self):
        app.conf.task_always_eager = True
        app.conf.task_eager_propagates = True
        try:
            with transaction.atomic():
                item = Item.objects.create(key=self.key, value="eager")
                r = tasks.record_item.apply_async_with_barrier(
                    args=(item.id, self.key))
                out = r.get()
                self.assertEqual(out["value"], "eager")
                self.assertTrue(out["eager"])
                self.assertIsNone(r.barrier_token)
                transaction.set_rollback(True)
        finally:
            app.conf.task_always_eager = False
            app.conf.task_eager_propagates = False
        self.assertEqual(runs(self.obs, self.key), 0)   # rolled back with us

    def test_synchronous_call_and_apply_do_not_wait(self):
        with transaction.atomic():
            item = Item.objects.create(key=self.key, value="sync")
            self.assertEqual(tasks.record_item(item.id, self.key)["value"],
                             "sync")
            # Even with a token in the headers, apply() runs eagerly: waiting
            # would be waiting for our own transaction.
            token = tx_barrier.db.producer_token()
            out = tasks.record_item.apply(
                args=(item.id, self.key), headers={TOKEN_HEADER: token}).get()
            self.assertEqual(out["value"], "sync")
            transaction.set_rollback(True)

    # --- chaining ---------------------------------------------------------------

    def test_link_continues_only_on_commit(self):
        with transaction.atomic():
            item = Item.objects.create(key=self.key, value="chained")
            r = tasks.record_item.apply_async_with_barrier(
                args=(item.id, self.key),
                link=tasks.record_result.s(self.key),
                link_error=tasks.record_error.s(self.key))
            wait_until_blocked(self.obs, r.barrier_token)
        self.get(r)
        poll(lambda: runs(self.obs, self.key, "callback"), "the callback")
        self.assertEqual(run_values(self.obs, self.key, "callback"), ["chained"])
        self.assertEqual(runs(self.obs, self.key, "errback"), 0)

    def test_abort_can_be_ignored(self):
        with transaction.atomic():
            item = Item.objects.create(key=self.key, value="quiet")
            r = tasks.record_item_quiet.apply_async_with_barrier(
                args=(item.id, self.key),
                link_error=tasks.record_error.s(self.key))
            wait_until_blocked(self.obs, r.barrier_token)
            transaction.set_rollback(True)
        # Ignored: no state is stored and no errback runs.  An errback would
        # run in the worker before it counts the task as done; so wait until
        # the worker no longer lists the task as active.
        poll(lambda: not support.waiters(self.obs, r.barrier_token),
             "the worker to leave barrier_wait")
        poll(lambda: not self._active(r.id), "the worker to finish the task")
        self.assertEqual(runs(self.obs, self.key, "errback"), 0)
        self.assertEqual(runs(self.obs, self.key), 0)
        self.assertEqual(r.state, "PENDING")

    @staticmethod
    def _active(task_id):
        replies = app.control.inspect(timeout=1).active()
        if replies is None:
            raise AssertionError("no worker answered inspect().active()")
        return any(t["id"] == task_id for ts in replies.values() for t in ts)

    # --- databases ---------------------------------------------------------------

    def test_using_another_database(self):
        with transaction.atomic(using="other"):
            item = Item.objects.using("other").create(key=self.key, value="o")
            r = tasks.record_item.apply_async_with_barrier(
                args=(item.id, self.key, "other"), using="other")
            # The worker waits on its connection to the same alias.
            wait_until_blocked(self.obs, r.barrier_token,
                               datname=support.dbname("other"))
            self.assertEqual(runs(self.obs, self.key), 0)
        self.assertEqual(self.get(r)["value"], "o")

    def test_psycopg2_connection_without_django(self):
        conn = psycopg2.connect(dbname=support.dbname())
        try:
            with conn.cursor() as cur:
                cur.execute("INSERT INTO shop_item (key, value) "
                            "VALUES (%s, 'from psycopg2') RETURNING id",
                            (self.key,))
                item_id = cur.fetchone()[0]
            r = tasks.record_item.apply_async_with_barrier(
                args=(item_id, self.key), db_connection=conn, using="plain")
            wait_until_blocked(self.obs, r.barrier_token)
            self.assertEqual(runs(self.obs, self.key), 0)
            conn.commit()
        finally:
            conn.close()
        self.assertEqual(self.get(r)["value"], "from psycopg2")

    def test_psycopg2_autocommit_connection(self):
        conn = psycopg2.connect(dbname=support.dbname())
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("INSERT INTO shop_item (key, value) "
                            "VALUES (%s, 'ac') RETURNING id", (self.key,))
                item_id = cur.fetchone()[0]
            r = tasks.record_item.apply_async_with_barrier(
                args=(item_id, self.key), db_connection=conn, using="plain")
            self.assertIsNone(r.barrier_token)
        finally:
            conn.close()
        self.assertEqual(self.get(r)["value"], "ac")


class DjangoExampleTest(unittest.TestCase):
    """The example of the README, as written there."""

    def test_kick_off_task(self):
        key = new_key()
        obs = support.observer()
        self.addCleanup(obs.close)
        model = Item.objects.create(key=key, value="old")

        @transaction.atomic
        def kick_off_task(model, value):
            model.value = value
            result = tasks.do_something_task.apply_async_with_barrier(
                args=(model.id, key))
            # Even with the task in the worker's hands before save(), it
            # cannot read the old value: it waits for our COMMIT.
            wait_until_blocked(obs, result.barrier_token)
            model.save()
            return result

        result = kick_off_task(model, "new")
        self.assertEqual(outcome(result), "new")
        self.assertEqual(run_values(obs, key), ["new"])


if __name__ == "__main__":
    unittest.main()
