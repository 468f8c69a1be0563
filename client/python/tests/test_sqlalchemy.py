"""SQLAlchemy producers (Session, Connection, savepoints, asyncio) and a
Celery application without Django whose worker checks tokens on SQLAlchemy
engines (sa_app), against a real PostgreSQL, Redis and Celery worker; the
same answers as Django's atomic() in test_celery."""
import asyncio
import os
import signal
import subprocess
import sys
import unittest
import uuid

import support
from support import poll, runs, run_values, wait_until_blocked
import sqlalchemy as sa
from celery.states import READY_STATES
from sqlalchemy import event
from sqlalchemy.orm import sessionmaker

import tx_barrier
import tx_barrier.sqlalchemy as txsa
from tx_barrier.celery import TransactionAborted

import sa_app
from sa_app import Item, Session, engine

# The portable edition (TXB_INSTALL_SQL) differs where its README says so.
PORTABLE = bool(os.environ.get("TXB_INSTALL_SQL"))

app = sa_app.app
SA2 = int(sa.__version__.split(".")[0]) >= 2
# The asyncio drivers: psycopg 3 needs SQLAlchemy 2.0 (1.4 has no
# postgresql+psycopg dialect); asyncpg works with both.
ASYNC_DRIVERS = ("psycopg", "asyncpg") if SA2 else ("asyncpg",)


def setUpModule():
    poll(lambda: app.control.ping(timeout=0.5),
         "the Celery worker of sa_app to answer")


def done(result):
    poll(lambda: result.state in READY_STATES,
         "task %s to finish (state %s)" % (result.id, result.state))
    return result


def new_key():
    return uuid.uuid4().hex[:16]


class SessionTest(unittest.TestCase):

    def setUp(self):
        self.obs = support.observer()
        self.addCleanup(self.obs.close)
        self.key = new_key()

    def add_item(self, session, value):
        item = Item(key=self.key, value=value)
        session.add(item)
        session.flush()
        return item.id

    # --- automatic inside Session.begin() --------------------------------

    def test_delay_inside_session_begin_waits_for_commit(self):
        with Session.begin() as s:
            self.assertIs(txsa.open_transaction(), s)
            item_id = self.add_item(s, "committed")
            r = sa_app.record_item.delay(item_id, self.key)
            token = poll(lambda: self._blocked_token(), "a waiter")
            wait_until_blocked(self.obs, token)
            self.assertEqual(runs(self.obs, self.key), 0)
            self.assertEqual(r.state, "PENDING")
        out = done(r).result
        self.assertEqual(r.state, "SUCCESS", out)
        self.assertEqual(out["value"], "committed")
        self.assertEqual(out["token"], token)
        self.assertIsNone(txsa.open_transaction())

    def _blocked_token(self):
        import re
        with self.obs.cursor() as cur:
            cur.execute("SELECT query FROM pg_stat_activity "
                        "WHERE wait_event = 'transactionid' "
                        "AND query LIKE %s", ("%barrier_wait(%",))
            toks = {m.group(1) for (q,) in cur.fetchall()
                    for m in [re.search(r"barrier_wait\('(\d+)'", q)] if m}
        return toks.pop() if len(toks) == 1 else None

    def test_task_id_before_commit_is_the_workers(self):
        # delay_on_commit returns no id (it publishes after COMMIT); a
        # barrier publish returns the real AsyncResult inside the block.
        with Session.begin() as s:
            item_id = self.add_item(s, "id")
            r = sa_app.record_item.apply_async_with_barrier(
                args=(item_id, self.key))
            task_id = r.id
            self.assertIsNotNone(task_id)
            wait_until_blocked(self.obs, r.barrier_token)
        out = done(app.AsyncResult(task_id)).result
        self.assertEqual(out["task_id"], task_id)
        self.assertEqual(out["token"], r.barrier_token)

    def test_rollback_never_runs_errback_sees_aborted(self):
        with self.assertRaises(ZeroDivisionError):
            with Session.begin() as s:
                item_id = self.add_item(s, "x")
                r = sa_app.record_item.apply_async_with_barrier(
                    args=(item_id, self.key),
                    link_error=sa_app.record_error.s(self.key))
                wait_until_blocked(self.obs, r.barrier_token)
                1 / 0
        done(r)
        self.assertIsInstance(r.result, TransactionAborted)
        poll(lambda: runs(self.obs, self.key, "errback"), "the errback")
        self.assertEqual(run_values(self.obs, self.key, "errback"),
                         ["TransactionAborted"])
        self.assertEqual(runs(self.obs, self.key), 0)

    def test_explicit_session_and_autobegun_session(self):
        s = Session()
        try:
            item_id = self.add_item(s, "autobegun")     # autobegins
            r = sa_app.record_item.apply_async_with_barrier(
                args=(item_id, self.key), session=s)
            self.assertIsNotNone(r.barrier_token)
            wait_until_blocked(self.obs, r.barrier_token)
            self.assertEqual(runs(self.obs, self.key), 0)
            s.commit()
        finally:
            s.close()
        self.assertEqual(done(r).result["value"], "autobegun")

    def test_engine_begin_connection(self):
        items = Item.__table__
        with engine.begin() as conn:
            self.assertIs(txsa.open_transaction(), conn)
            item_id = conn.execute(
                items.insert().values(key=self.key, value="core")
                .returning(items.c.id)).scalar()
            r = sa_app.record_item.delay(item_id, self.key)
            poll(self._blocked_token, "a waiter")
            self.assertEqual(runs(self.obs, self.key), 0)
        self.assertEqual(done(r).result["value"], "core")

    def test_outside_a_transaction_no_token(self):
        with Session.begin() as s:
            item_id = self.add_item(s, "plain")
        self.assertIsNone(txsa.open_transaction())
        r = sa_app.record_item.apply_async_with_barrier(
            args=(item_id, self.key))
        self.assertIsNone(r.barrier_token)
        out = done(r).result
        self.assertEqual(out["value"], "plain")
        self.assertIsNone(out["token"])

    def test_two_open_sessions_ask_for_session(self):
        with Session.begin() as s1:
            s1.connection()
            with Session.begin() as s2:
                s2.connection()
                with self.assertRaises(tx_barrier.BarrierConfigurationError):
                    sa_app.record_item.delay(0, self.key)
                # Naming one works.
                self.assertIsNotNone(txsa.enqueue(s2))

    # --- savepoints: the same answers as nested atomic() --------------------

    def test_savepoint_rolled_back_is_aborted_outer_commits(self):
        with Session.begin() as s:
            self.add_item(s, "outer")
            try:
                with s.begin_nested():
                    item_id = self.add_item(s, "inner")
                    r = sa_app.record_item.apply_async_with_barrier(
                        args=(item_id, self.key))
                    raise ValueError("roll the savepoint back")
            except ValueError:
                pass
        with Session() as s:
            self.assertEqual(
                s.query(Item).filter_by(key=self.key).count(), 1)
        self.assertIsInstance(done(r).result, TransactionAborted)
        self.assertEqual(runs(self.obs, self.key), 0)

    def test_released_savepoint_follows_commit(self):
        with Session.begin() as s:
            with s.begin_nested():
                item_id = self.add_item(s, "inner")
                r = sa_app.record_item.apply_async_with_barrier(
                    args=(item_id, self.key))
            wait_until_blocked(self.obs, r.barrier_token)
            self.assertEqual(runs(self.obs, self.key), 0)
        self.assertEqual(done(r).result["value"], "inner")

    def test_released_savepoint_outer_rollback_is_aborted(self):
        with Session.begin() as s:
            with s.begin_nested():
                r = sa_app.record_item.apply_async_with_barrier(
                    args=(0, self.key))
            s.rollback()
        self.assertIsInstance(done(r).result, TransactionAborted)

    def test_tokens_of_savepoints(self):
        with Session.begin() as s:
            top = txsa.enqueue(s)
            with s.begin_nested():
                sub = txsa.enqueue(s)
            self.assertNotEqual(top, sub)
            nested = s.begin_nested()
            rolled = txsa.enqueue(s)
            nested.rollback()
            # barrier_wait answers at once; the portable edition's
            # barrier_status says 'in progress' until the top level ends.
            self.assertEqual(tx_barrier.wait(self.obs, rolled, 5),
                             tx_barrier.ABORTED)
            self.assertEqual(tx_barrier.status(self.obs, rolled),
                             tx_barrier.IN_PROGRESS if PORTABLE
                             else tx_barrier.ABORTED)
            self.assertEqual(tx_barrier.status(self.obs, sub),
                             tx_barrier.IN_PROGRESS)
        self.assertEqual(tx_barrier.status(self.obs, top),
                         tx_barrier.COMMITTED)
        self.assertEqual(tx_barrier.status(self.obs, sub),
                         tx_barrier.COMMITTED)

    # --- typed errors ----------------------------------------------------

    def test_missing_extension(self):
        noext = sa.create_engine(sa_app.url(database=sa_app.NOEXT))
        self.addCleanup(noext.dispose)
        with sessionmaker(noext).begin() as s:
            with self.assertRaises(tx_barrier.BarrierExtensionMissing) as cm:
                sa_app.record_item.apply_async_with_barrier(
                    args=(0, self.key), session=s)
            s.rollback()
        self.assertEqual(cm.exception.sqlstate, "42883")
        self.assertEqual(cm.exception.database, sa_app.NOEXT)
        # Worker side: checked on the engine of alias "noext".
        with Session.begin() as s:
            r = sa_app.record_item.apply_async_with_barrier(
                args=(0, self.key), session=s, using="noext")
        done(r)
        self.assertIsInstance(r.result, tx_barrier.BarrierExtensionMissing)
        self.assertEqual(runs(self.obs, self.key), 0)

    def test_token_error_sqlstate(self):
        with self.assertRaises(tx_barrier.BarrierTokenError) as cm:
            txsa.worker_wait(engine, 1 << 62, 1)
        self.assertEqual(cm.exception.sqlstate, "22023")

    # --- the producer dies ---------------------------------------------

    def _producer(self, mode):
        env = dict(os.environ)
        env.pop("DJANGO_SETTINGS_MODULE", None)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (os.path.dirname(support.HERE),
                        env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(
            [sys.executable, os.path.join(support.HERE, "producer_sa.py"),
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
        self.assertEqual(proc.wait(timeout=support.DEADLINE), -signal.SIGKILL)
        out = done(r).result
        self.assertEqual(r.state, "SUCCESS", out)
        self.assertEqual(out["value"], "v-" + self.key)
        self.assertEqual(out["token"], token)
        self.assertEqual(out["task_id"], r.id)

    def test_killed_before_commit_never_runs(self):
        proc, r, token = self._producer("before-commit")
        wait_until_blocked(self.obs, token)
        proc.send_signal(signal.SIGKILL)
        self.assertEqual(proc.wait(timeout=support.DEADLINE), -signal.SIGKILL)
        self.assertIsInstance(done(r).result, TransactionAborted)
        self.assertEqual(runs(self.obs, self.key), 0)

    # --- a long transaction -------------------------------------------------

    def test_timeout_retries_then_runs_after_late_commit(self):
        with Session.begin() as s:
            item_id = self.add_item(s, "late")
            r = sa_app.record_item_impatient.delay(item_id, self.key)
            poll(lambda: r.state == "RETRY", "the task to be retried")
            self.assertEqual(runs(self.obs, self.key), 0)
        out = done(r).result
        self.assertEqual(out["value"], "late")
        self.assertGreaterEqual(out["waits"], 1)

    # --- PgBouncer ---------------------------------------------------------

    @unittest.skipUnless(sa_app.BOUNCER_PORT, "no PgBouncer (TXB_PGBOUNCER_PORT)")
    def test_through_pgbouncer_transaction_pooling(self):
        # Producer and worker both through PgBouncer; the producer on
        # either driver (SQLAlchemy 1.4 has no psycopg 3 dialect).
        for driver in ("psycopg2", "psycopg") if SA2 else ("psycopg2",):
            for commit in (True, False):
                with self.subTest(driver=driver, commit=commit):
                    key = new_key()
                    bouncer = sa_app.bouncer_engine(driver)
                    try:
                        with sessionmaker(bouncer)() as s:
                            with s.begin():
                                item = Item(key=key, value="bounced")
                                s.add(item)
                                s.flush()
                                r = sa_app.record_item.apply_async_with_barrier(
                                    args=(item.id, key), using="bouncer")
                                wait_until_blocked(self.obs, r.barrier_token)
                                if not commit:
                                    s.rollback()
                    finally:
                        bouncer.dispose()
                    done(r)
                    if commit:
                        self.assertEqual(r.result["value"], "bounced")
                    else:
                        self.assertIsInstance(r.result, TransactionAborted)
                        self.assertEqual(runs(self.obs, key), 0)


class AsyncSessionTest(unittest.TestCase):
    """AsyncSession: the token is taken with enqueue_async and passed on."""

    def test_commit_rollback_savepoint(self):
        for driver in ASYNC_DRIVERS:
            with self.subTest(driver=driver):
                asyncio.run(self._scenario(driver))

    async def _scenario(self, driver):
        from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
        eng = create_async_engine(sa_app.url(driver),
                                  poolclass=sa.pool.NullPool)
        AsyncSessionLocal = sessionmaker(eng, class_=AsyncSession,
                                         expire_on_commit=False)
        obs = support.observer()
        key = new_key()
        try:
            async with AsyncSessionLocal() as s:
                async with s.begin():
                    item = Item(key=key, value="async " + driver)
                    s.add(item)
                    await s.flush()
                    # A synchronous publish cannot query from the loop: it
                    # says how to take the token instead.
                    with self.assertRaises(
                            tx_barrier.BarrierConfigurationError) as cm:
                        sa_app.record_item.delay(item.id, key)
                    self.assertIn("enqueue_async", str(cm.exception))
                    token = await txsa.enqueue_async(s)
                    r = sa_app.record_item.apply_async_with_barrier(
                        args=(item.id, key), token=token)
                    self.assertEqual(r.barrier_token, token)
                    nested = await s.begin_nested()
                    sub = await txsa.enqueue_async(s)
                    r_sub = sa_app.record_item.apply_async_with_barrier(
                        args=(item.id, key + "-sub"), token=sub)
                    await nested.rollback()
                    await asyncio.get_running_loop().run_in_executor(
                        None, wait_until_blocked, obs, token)
                    self.assertEqual(runs(obs, key), 0)
                    # Inside run_sync the synchronous API works.  (After
                    # ROLLBACK TO SAVEPOINT the savepoint is still open:
                    # this token is its new subtransaction's, which ends
                    # with the outer transaction.)
                    t3 = await s.run_sync(txsa.enqueue)
                    self.assertIsNotNone(t3)
                async with s.begin():
                    token2 = await txsa.enqueue_async(s)
                    r2 = sa_app.record_item.apply_async_with_barrier(
                        args=(0, key + "-rb"), token=token2)
                    await s.rollback()
            await asyncio.get_running_loop().run_in_executor(None, done, r)
            self.assertEqual(r.result["value"], "async " + driver)
            self.assertEqual(tx_barrier.status(obs, t3), tx_barrier.COMMITTED)
            for aborted in (r_sub, r2):
                await asyncio.get_running_loop().run_in_executor(
                    None, done, aborted)
                self.assertIsInstance(aborted.result, TransactionAborted)
            self.assertEqual(runs(obs, key + "-sub"), 0)
            self.assertEqual(runs(obs, key + "-rb"), 0)
        finally:
            obs.close()
            await eng.dispose()


if __name__ == "__main__":
    unittest.main()
