"""tx_barrier.Waiter against real servers: a cluster with tx_barrier in
shared_preload_libraries (TXB_PY_PRELOADED_DSN, started by the layer) for
the shared waits, the layer's shared server (no preloading) and a database
without the extension for the errors."""
import asyncio
import os
import threading
import unittest

import support
import psycopg2

import tx_barrier
from tx_barrier import (ABORTED, COMMITTED, BarrierTimeout, BarrierTokenError,
                        BarrierWaiterUnavailable, Waiter)

PORTABLE = bool(os.environ.get("TXB_INSTALL_SQL"))
DSN = os.environ.get("TXB_PY_PRELOADED_DSN")
DRIVERS = ("psycopg2", "psycopg")
APP = "txb_test_waiter"


def dsn(app=APP):
    return "%s application_name=%s" % (DSN, app)


def connect(app="txb_test_producer"):
    return psycopg2.connect(dsn(app))


def observer():
    conn = connect("txb_test_observer")
    conn.autocommit = True
    return conn


def registered(obs, waiter):
    """Tokens the waiter's backend sleeps on now (barrier_waiters())."""
    pid = waiter.backend_pid
    if pid is None:
        return set()
    with obs.cursor() as cur:
        cur.execute("SELECT token::text FROM barrier_waiters() WHERE pid = %s",
                    (pid,))
        return {r[0] for r in cur.fetchall()}


def until_registered(obs, waiter, tokens):
    tokens = set(tokens)
    support.poll(lambda: tokens <= registered(obs, waiter),
                 "the waiter's backend to sleep on %d tokens" % len(tokens))


class Caller(threading.Thread):
    """A thread blocked in waiter.wait(token), keeping the outcome."""

    def __init__(self, waiter, token, timeout=support.DEADLINE):
        super().__init__(daemon=True)
        self.waiter, self.token, self.timeout = waiter, token, timeout
        self.state = self.error = None
        self.start()

    def run(self):
        try:
            self.state = self.waiter.wait(self.token, self.timeout)
        except Exception as exc:
            self.error = exc

    def outcome(self):
        self.join(support.DEADLINE + 10)
        if self.is_alive():
            raise AssertionError("wait(%s) never returned" % self.token)
        if self.error is not None:
            raise self.error
        return self.state


@unittest.skipIf(DSN is None, "TXB_PY_PRELOADED_DSN is not set")
class WaiterTest(unittest.TestCase):

    def setUp(self):
        self.obs = observer()
        self.conns = []

    def tearDown(self):
        for c in self.conns:
            c.close()
        self.obs.close()

    def producer(self):
        c = connect()
        self.conns.append(c)
        return c

    def waiter(self, driver, **kw):
        w = Waiter(dsn(), driver=driver, **kw)
        self.addCleanup(w.close)
        return w

    def backends(self, app=APP):
        return support.scalar(self.obs, "SELECT count(*) FROM pg_stat_activity "
                                        "WHERE application_name = %s", (app,))

    def test_many_tokens_one_backend(self):
        # 500 tokens of 10 transactions (top level and released savepoints),
        # waited for by 500 threads: one backend sleeps on all of them.
        for driver in DRIVERS:
            with self.subTest(driver=driver):
                w = self.waiter(driver)
                expected = {}
                producers = []
                for i in range(10):
                    p = self.producer()
                    producers.append(p)
                    outcome = COMMITTED if i < 7 else ABORTED
                    expected[tx_barrier.enqueue(p)] = outcome
                    with p.cursor() as cur:
                        for j in range(49):
                            cur.execute("SAVEPOINT s%d" % j)
                            expected[tx_barrier.enqueue(p)] = outcome
                            cur.execute("RELEASE SAVEPOINT s%d" % j)
                self.assertEqual(len(expected), 500)
                callers = [Caller(w, t) for t in expected]
                until_registered(self.obs, w, expected)
                self.assertEqual(w.pending(), 500)
                self.assertEqual(self.backends(), 1)
                # No other backend sleeps on any token.  (The waiter's own
                # may be between two statements: a cancel that arrives late
                # makes it issue the same tokens again.)
                self.assertEqual(support.scalar(
                    self.obs, "SELECT count(*) FROM barrier_waiters() "
                              "WHERE pid <> %s", (w.backend_pid,)), 0)
                for i, p in enumerate(producers):
                    (p.commit if i < 7 else p.rollback)()
                got = {c.token: c.outcome() for c in callers}
                self.assertEqual(got, expected)
                self.assertEqual(w.pending(), 0)
                self.assertEqual(self.backends(), 1)
                w.close()
                support.poll(lambda: self.backends() == 0,
                             "the waiter's connection to close")

    def test_savepoint_rollback_wakes_its_waiter(self):
        w = self.waiter("psycopg2")
        p = self.producer()
        top = tx_barrier.enqueue(p)
        with p.cursor() as cur:
            cur.execute("SAVEPOINT s")
            sub = tx_barrier.enqueue(p)
            a, b = Caller(w, top), Caller(w, sub)
            until_registered(self.obs, w, [top, sub])
            cur.execute("ROLLBACK TO SAVEPOINT s")
        self.assertEqual(b.outcome(), ABORTED)
        self.assertTrue(a.is_alive())
        p.commit()
        self.assertEqual(a.outcome(), COMMITTED)

    def test_prepared_transaction(self):
        w = self.waiter("psycopg")
        tokens = {}
        for gid in ("txb_waiter_2pc_c", "txb_waiter_2pc_a"):
            p = self.producer()
            with p.cursor() as cur:
                cur.execute("SELECT barrier_enqueue()::text")
                tokens[gid] = cur.fetchone()[0]
                cur.execute("PREPARE TRANSACTION %s", (gid,))
            p.commit()      # psycopg2's end of the (now prepared) transaction
        callers = {gid: Caller(w, tok) for gid, tok in tokens.items()}
        until_registered(self.obs, w, tokens.values())
        with self.obs.cursor() as cur:
            cur.execute("COMMIT PREPARED 'txb_waiter_2pc_c'")
        self.assertEqual(callers["txb_waiter_2pc_c"].outcome(), COMMITTED)
        self.assertTrue(callers["txb_waiter_2pc_a"].is_alive())
        with self.obs.cursor() as cur:
            cur.execute("ROLLBACK PREPARED 'txb_waiter_2pc_a'")
        self.assertEqual(callers["txb_waiter_2pc_a"].outcome(), ABORTED)

    def test_timeout_and_ended_tokens(self):
        w = self.waiter("psycopg2")
        p = self.producer()
        running = tx_barrier.enqueue(p)
        with self.assertRaises(BarrierTimeout) as cm:
            w.wait(running, 0.2)
        self.assertIn(running, str(cm.exception))
        self.assertEqual(w.pending(), 0)    # the timed-out wait is withdrawn
        p.commit()
        self.assertEqual(w.wait(running, support.DEADLINE), COMMITTED)
        with self.assertRaises(ValueError):
            w.wait(running, -1)

    def test_token_added_while_the_waiter_sleeps(self):
        # A waits on a transaction that stays open; B, added while the
        # statement sleeps on A alone, is answered without A ending.
        for driver in DRIVERS:
            with self.subTest(driver=driver):
                w = self.waiter(driver)
                pa, pb = self.producer(), self.producer()
                a = Caller(w, tx_barrier.enqueue(pa))
                until_registered(self.obs, w, [a.token])
                tb = tx_barrier.enqueue(pb)
                b = Caller(w, tb)
                until_registered(self.obs, w, [a.token, tb])
                pb.rollback()
                self.assertEqual(b.outcome(), ABORTED)
                # An ended token is answered too, while A still sleeps.
                self.assertEqual(w.wait(tb, support.DEADLINE), ABORTED)
                self.assertTrue(a.is_alive())
                self.assertGreaterEqual(w.cancels, 1)
                pa.commit()
                self.assertEqual(a.outcome(), COMMITTED)
                w.close()

    def test_reconnect_after_pg_terminate_backend(self):
        # The waiter's backend is terminated while three waits are pending;
        # two transactions end while it cannot connect again (the factory
        # is held), the third after: all three are answered correctly, on
        # a new backend.
        for driver in DRIVERS:
            with self.subTest(driver=driver):
                gate = threading.Event()
                calls = []
                attempt = threading.Event()

                def factory():
                    calls.append(1)
                    if len(calls) > 1:
                        attempt.set()
                        gate.wait(support.DEADLINE)
                    if driver == "psycopg2":
                        return psycopg2.connect(dsn())
                    import psycopg
                    return psycopg.connect(dsn())

                w = Waiter(connect=factory, reconnect_delay=0.01)
                self.addCleanup(w.close)
                ps = [self.producer() for _ in range(3)]
                callers = [Caller(w, tx_barrier.enqueue(p)) for p in ps]
                until_registered(self.obs, w, [c.token for c in callers])
                old = w.backend_pid
                with self.assertLogs("tx_barrier.waiter", "WARNING") as logs:
                    with self.obs.cursor() as cur:
                        cur.execute("SELECT pg_terminate_backend(%s)", (old,))
                    self.assertTrue(attempt.wait(support.DEADLINE),
                                    "the waiter never tried to connect again")
                self.assertIn("connection lost", logs.output[0])
                ps[0].commit()
                ps[1].rollback()
                gate.set()
                self.assertEqual(callers[0].outcome(), COMMITTED)
                self.assertEqual(callers[1].outcome(), ABORTED)
                until_registered(self.obs, w, [callers[2].token])
                self.assertNotEqual(w.backend_pid, old)
                self.assertEqual(w.reconnects, 1)
                ps[2].commit()
                self.assertEqual(callers[2].outcome(), COMMITTED)
                self.assertEqual(self.backends(), 1)
                w.close()
                support.poll(lambda: self.backends() == 0,
                             "the waiter's connection to close")

    def test_bad_token_fails_only_its_own_wait(self):
        w = self.waiter("psycopg2")
        p = self.producer()
        good = Caller(w, tx_barrier.enqueue(p))
        until_registered(self.obs, w, [good.token])
        with self.assertRaises(BarrierTokenError) as cm:
            w.wait(1 << 40, support.DEADLINE)   # in the future: 22023
        self.assertEqual(cm.exception.sqlstate, "22023")
        self.assertTrue(good.is_alive())
        p.commit()
        self.assertEqual(good.outcome(), COMMITTED)

    def test_asyncio_on_psycopg3(self):
        w = self.waiter("psycopg")
        ps = [self.producer() for _ in range(20)]
        tokens = [tx_barrier.enqueue(p) for p in ps]
        left = self.producer()
        stuck = tx_barrier.enqueue(left)
        obs = self.obs

        async def main():
            waits = [asyncio.ensure_future(w.wait_async(t, support.DEADLINE))
                     for t in tokens]
            cancelled = asyncio.ensure_future(w.wait_async(stuck))
            await asyncio.get_running_loop().run_in_executor(
                None, until_registered, obs, w, tokens + [stuck])
            # Cancelling a coroutine withdraws its wait (AbortSignal's
            # counterpart); the others are still answered.
            cancelled.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await cancelled
            for i, p in enumerate(ps):
                (p.commit if i % 2 else p.rollback)()
            return await asyncio.gather(*waits)

        got = asyncio.run(main())
        self.assertEqual(got, [COMMITTED if i % 2 else ABORTED
                               for i in range(len(ps))])
        support.poll(lambda: w.pending() == 0, "the cancelled wait to go")
        with self.assertRaises(BarrierTimeout):
            asyncio.run(w.wait_async(stuck, 0.1))
        left.rollback()

    def test_forked_child_gets_a_waiter_of_its_own(self):
        w = self.waiter("psycopg2")
        p = self.producer()
        token = tx_barrier.enqueue(p)
        p.commit()
        self.assertEqual(w.wait(token), COMMITTED)
        parent_pid = w.backend_pid
        r, wfd = os.pipe()
        child = os.fork()
        if child == 0:      # the child: its own connection, answers
            try:
                os.close(r)
                state = w.wait(token, support.DEADLINE)
                os.write(wfd, ("%s %s" % (state, w.backend_pid)).encode())
            finally:
                os._exit(0)
        os.close(wfd)
        with os.fdopen(r) as f:
            state, pid = f.read().split()
        os.waitpid(child, 0)
        self.assertEqual(state, COMMITTED)
        self.assertNotEqual(int(pid), parent_pid)
        # The parent's connection still works.
        p2 = self.producer()
        t2 = tx_barrier.enqueue(p2)
        c = Caller(w, t2)
        until_registered(self.obs, w, [t2])
        self.assertEqual(w.backend_pid, parent_pid)
        p2.commit()
        self.assertEqual(c.outcome(), COMMITTED)


class WaiterUnavailableTest(unittest.TestCase):
    """Servers that cannot serve a Waiter: the waits raise
    BarrierWaiterUnavailable; ended tokens are answered all the same."""

    def test_without_preloading(self):
        producer = psycopg2.connect(dbname=support.dbname())
        self.addCleanup(producer.close)
        ended = tx_barrier.enqueue(producer)
        producer.commit()
        running = tx_barrier.enqueue(producer)
        with Waiter("dbname=" + support.dbname()) as w:
            self.assertEqual(w.wait(ended, support.DEADLINE), COMMITTED)
            with self.assertRaises(BarrierWaiterUnavailable) as cm:
                w.wait(running, support.DEADLINE)
            self.assertEqual(cm.exception.sqlstate, "55000")
            self.assertIn("shared_preload_libraries", str(cm.exception))
            self.assertIsInstance(cm.exception,
                                  tx_barrier.BarrierConfigurationError)
        producer.rollback()

    def test_without_barrier_wait_any(self):
        # No extension at all (and the portable edition, which has no
        # barrier_wait_any()): 42883.
        dbs = [os.environ.get("TXB_PY_DB_NOEXT", "txb_python_noext")]
        if PORTABLE:
            dbs.append(support.dbname())
        for db in dbs:
            with self.subTest(db=db), Waiter("dbname=" + db) as w:
                with self.assertRaises(BarrierWaiterUnavailable) as cm:
                    w.wait(1, support.DEADLINE)
                self.assertEqual(cm.exception.sqlstate, "42883")
                self.assertIn("barrier_wait_any", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
