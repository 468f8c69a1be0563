"""How barrier tasks get published: headers kept across a barrier retry,
the automatic barrier on plain publishes inside atomic(), canvases, the
bounded publish when the broker is down, and how aborts are logged.  Real
PostgreSQL, Redis and Celery worker (tools/layers/50-python.sh)."""
import logging
import os
import re
import time
import unittest
import uuid

import support
from support import poll, runs, run_values, wait_until_blocked
from celery import Celery, chain, chord, group
from celery.states import READY_STATES
from django.db import transaction

import tx_barrier
import tx_barrier.celery as txc
from shop.models import Item
from shop import tasks
from tx_barrier.celery import (TransactionAborted,
                               TransactionBarrierTask)

app = support.app


def setUpModule():
    poll(lambda: app.control.ping(timeout=0.5), "a Celery worker to answer")


def done(result):
    try:
        poll(lambda: result.state in READY_STATES,
             "task %s to finish" % result.id)
    except AssertionError as exc:
        raise AssertionError("%s (state %s)" % (exc, result.state)) from None
    return result


def new_key():
    return uuid.uuid4().hex[:16]


class PublishTest(unittest.TestCase):

    def setUp(self):
        self.obs = support.observer()
        self.addCleanup(self.obs.close)
        self.key = new_key()

    # --- 1. headers across a barrier retry --------------------------------

    def test_custom_headers_survive_barrier_retry(self):
        with transaction.atomic():
            item = Item.objects.create(key=self.key, value="h")
            r = tasks.record_item_impatient.apply_async_with_barrier(
                args=(item.id, self.key), headers={"x_tenant": "acme"})
            # Let the 0.5 s wait time out at least once before the commit.
            poll(lambda: self._waits_seen(r), "a barrier retry",
                 interval=0.1)
        out = done(r).result
        self.assertEqual(r.state, "SUCCESS", out)
        self.assertGreaterEqual(out["waits"], 1)
        self.assertEqual(out["tenant"], "acme")

    def _waits_seen(self, r):
        # The worker logs each barrier retry of the task under its id.
        log = os.environ.get("TXB_PY_WORKER_LOG")
        with open(log, encoding="utf-8", errors="replace") as f:
            return ("%s] retry:" % r.id) in f.read()

    # --- 2. plain publishes inside atomic() --------------------------------

    def _assert_waits_and_follows(self, publish, commit=True):
        with transaction.atomic():
            item = Item.objects.create(key=self.key, value="auto")
            r = publish(item.id)
            token = r.barrier_token if hasattr(r, "barrier_token") else None
            # The worker has it and blocks on our transaction.
            token = token or poll(lambda: self._blocked_token(), "a waiter")
            wait_until_blocked(self.obs, token)
            self.assertEqual(runs(self.obs, self.key), 0)
            if not commit:
                transaction.set_rollback(True)
        return r

    def _blocked_token(self):
        # The one token a worker is blocked on (tests run one at a time).
        with self.obs.cursor() as cur:
            cur.execute(
                "SELECT query FROM pg_stat_activity "
                "WHERE wait_event = 'transactionid' "
                "AND query LIKE %s", ("%barrier_wait(%",))
            toks = set()
            for (q,) in cur.fetchall():
                m = re.search(r"barrier_wait\('(\d+)'", q)
                if m:
                    toks.add(m.group(1))
        return toks.pop() if len(toks) == 1 else None

    def test_delay_inside_atomic_gets_a_barrier(self):
        for name, publish in (
                ("delay", lambda i: tasks.record_item.delay(i, self.key)),
                ("apply_async", lambda i: tasks.record_item.apply_async(
                    (i, self.key))),
                ("s().delay", lambda i: tasks.record_item.s(
                    i, self.key).delay())):
            with self.subTest(publish=name):
                self.key = new_key()
                r = self._assert_waits_and_follows(publish)
                out = done(r).result
                self.assertEqual(r.state, "SUCCESS", out)
                self.assertEqual(out["value"], "auto")
                self.assertIsNotNone(out["token"])

    def test_delay_inside_rolled_back_atomic_never_runs(self):
        r = self._assert_waits_and_follows(
            lambda i: tasks.record_item.delay(i, self.key), commit=False)
        done(r)
        self.assertEqual(r.state, "FAILURE")
        self.assertIsInstance(r.result, TransactionAborted)
        self.assertEqual(runs(self.obs, self.key), 0)

    def test_chain_delay_inside_atomic_and_links_published_by_worker(self):
        # The first task waits; the second is published by the worker,
        # outside any transaction, and runs without a token.
        with transaction.atomic():
            c = chain(tasks.record_value.s("first", self.key),
                      tasks.record_value.si("second", self.key)).delay()
            tok = poll(self._blocked_token, "the first task to wait")
            wait_until_blocked(self.obs, tok)
            self.assertEqual(runs(self.obs, self.key), 0)
        done(c)
        self.assertEqual(c.state, "SUCCESS", c.result)
        self.assertIsNone(c.result["token"])
        self.assertIsNotNone(c.parent.result["token"])
        self.assertEqual(run_values(self.obs, self.key), ["first", "second"])

    def test_celery_retry_from_inside_atomic_is_not_barriered(self):
        tasks.retry_in_atomic.delay(self.key)
        # The retry runs (a barrier on the rolled-back atomic() would stop
        # it) and logs attempt 1; attempt 0's row was rolled back.  The
        # result backend's last word is no test: with countdown=0 the retry
        # can finish before the first run has recorded its RETRY state.
        poll(lambda: run_values(self.obs, self.key, "attempt") == ["1"],
             "the retry to run and log attempt 1")

    def test_publish_outside_transaction_carries_no_token(self):
        # What beat and other out-of-transaction publishers do.
        item = Item.objects.create(key=self.key, value="beat")
        r = tasks.record_item.delay(item.id, self.key)
        out = done(r).result
        self.assertIsNone(out["token"])

    def test_barrier_false_opts_out(self):
        item = Item.objects.create(key=self.key, value="out")
        with transaction.atomic():
            r = tasks.record_item.apply_async((item.id, self.key),
                                              barrier=False)
            out = done(r).result        # runs before our COMMIT
        self.assertIsNone(out["token"])

    def test_barrier_auto_off_warns(self):
        item = Item.objects.create(key=self.key, value="w")
        with self.assertLogs("tx_barrier.celery", logging.WARNING) as cm:
            with transaction.atomic():
                r = tasks.record_item_warned.delay(item.id, self.key)
        self.assertIn("apply_async_with_barrier", "\n".join(cm.output))
        self.assertIsNone(done(r).result["token"])

    def test_alias_of_open_atomic_found_without_using(self):
        with transaction.atomic(using="other"):
            item = Item.objects.using("other").create(key=self.key, value="o")
            r = tasks.record_item.apply_async_with_barrier(
                args=(item.id, self.key, "other"))
            self.assertIsNotNone(r.barrier_token)
            wait_until_blocked(self.obs, r.barrier_token,
                               datname=support.dbname("other"))
        self.assertEqual(done(r).result["value"], "o")

    def test_two_open_aliases_ask_for_using(self):
        with transaction.atomic():
            with transaction.atomic(using="other"):
                with self.assertRaises(tx_barrier.BarrierConfigurationError):
                    tasks.record_item.apply_async_with_barrier(args=(0, "x"))

    # --- 3. canvases -------------------------------------------------------

    def test_signature_with_barrier(self):
        with transaction.atomic():
            item = Item.objects.create(key=self.key, value="sig")
            r = txc.apply_async_with_barrier(
                tasks.record_item.s(item.id, self.key))
            wait_until_blocked(self.obs, r.barrier_token)
        self.assertEqual(done(r).result["value"], "sig")

    def test_chain_with_barrier_commit_and_abort(self):
        for commit in (True, False):
            with self.subTest(commit=commit):
                key = new_key()
                with transaction.atomic():
                    c = txc.apply_async_with_barrier(
                        chain(tasks.record_value.s("a", key),
                              tasks.record_value.si("b", key)),
                        link_error=tasks.record_error.s(key))
                    wait_until_blocked(self.obs, c.barrier_token)
                    self.assertEqual(runs(self.obs, key), 0)
                    if not commit:
                        transaction.set_rollback(True)
                if commit:
                    done(c)
                    self.assertEqual(run_values(self.obs, key), ["a", "b"])
                else:
                    poll(lambda: runs(self.obs, key, "errback"),
                         "the errback")
                    self.assertEqual(run_values(self.obs, key, "errback"),
                                     ["TransactionAborted"])
                    self.assertEqual(runs(self.obs, key), 0)
                    self.assertEqual(c.parent.state, "FAILURE")

    def test_group_and_chord_with_barrier(self):
        with transaction.atomic():
            g = txc.apply_async_with_barrier(
                group(tasks.record_value.s(i, self.key) for i in range(3)))
            wait_until_blocked(self.obs, g.barrier_token)
            self.assertEqual(runs(self.obs, self.key), 0)
        poll(lambda: g.ready(), "the group")
        self.assertEqual(sorted(r.result["value"] for r in g.results),
                         ["0", "1", "2"])
        key = new_key()
        with transaction.atomic():
            c = txc.apply_async_with_barrier(chord(
                [tasks.record_value.s(i, key) for i in range(2)],
                tasks.plain_record_value.si("body", key)))
            token = c.barrier_token
            poll(lambda: support.waiters(self.obs, token) >= 2,
                 "both header tasks to wait")
            transaction.set_rollback(True)
        # Aborted: the header tasks fail, the body never runs.
        poll(lambda: c.parent is not None and c.parent.ready(), "the header")
        self.assertEqual(runs(self.obs, key), 0)
        self.assertEqual(runs(self.obs, key, "plain"), 0)

    def test_canvas_with_a_plain_first_task_is_refused(self):
        with transaction.atomic():
            with self.assertRaises(tx_barrier.BarrierConfigurationError):
                txc.apply_async_with_barrier(
                    chain(tasks.plain_record_value.s(1, self.key),
                          tasks.record_value.s(self.key)))

    # --- 6. aborts logged at INFO -----------------------------------------

    def test_abort_logged_at_info_without_traceback(self):
        with transaction.atomic():
            r = tasks.record_item.apply_async_with_barrier(
                args=(0, self.key), link_error=tasks.record_error.s(self.key))
            wait_until_blocked(self.obs, r.barrier_token)
            transaction.set_rollback(True)
        done(r)
        self.assertEqual(r.state, "FAILURE")
        poll(lambda: runs(self.obs, self.key, "errback"), "the errback")
        log = os.environ["TXB_PY_WORKER_LOG"]

        def line():
            with open(log, encoding="utf-8", errors="replace") as f:
                return [ln for ln in f if r.id in ln and "not run" in ln]
        lines = poll(line, "the worker's log line of the abort")
        self.assertIn("INFO", lines[0])
        # A token, not a transaction id.
        self.assertIn("barrier token %s" % r.barrier_token, lines[0])
        self.assertNotIn("transaction %s" % r.barrier_token, lines[0])
        with open(log, encoding="utf-8", errors="replace") as f:
            text = f.read()
        self.assertNotIn("%s] raised unexpected" % r.id, text)

    # --- 7. broker down inside the transaction -----------------------------

    def test_broker_down_publish_is_bounded(self):
        port = int(os.environ["TXB_PY_DEAD_PORT"])
        dead = Celery("dead", broker="redis://127.0.0.1:%d/0" % port,
                      set_as_current=False)

        @dead.task(base=TransactionBarrierTask, name="dead.t")
        def t():
            pass

        def attempt(**opts):
            start = time.monotonic()
            with transaction.atomic():
                with self.assertRaises(Exception) as cm:
                    t.apply_async_with_barrier(**opts)
            self.assertNotIsInstance(cm.exception, AssertionError)
            return time.monotonic() - start

        # The default policy gives up (the bound is a guard against a hang,
        # not a speed the machine must reach) ...
        default = attempt()
        self.assertLess(default, 60.0)
        # ... and the caller's policy wins: 4 retries 0.5 s apart sleep at
        # least 1.5 s (a lower bound holds however slow the machine is).
        own = attempt(retry_policy={"max_retries": 4, "interval_start": 0.5,
                                    "interval_step": 0.5,
                                    "interval_max": 0.5})
        self.assertGreaterEqual(own, 1.5)


if __name__ == "__main__":
    unittest.main()
