"""psycopg 3 beside psycopg2 (producer, worker, typed errors, asyncio) and
the error for a database without the extension, against a real server, a
real Redis and a real Celery worker."""
import asyncio
import os
import unittest

import support
from support import poll, runs
import psycopg
import psycopg2
from celery.states import READY_STATES

import tx_barrier
import tx_barrier.aio
from shop import tasks
from tx_barrier.celery import TransactionAborted

NOEXT = os.environ.get("TXB_PY_DB_NOEXT", "txb_python_noext")
# The portable edition installed in a schema that is not on the search_path.
OFFPATH = os.environ.get("TXB_PY_DB_OFFPATH", "txb_python_offpath")


def connect(driver, dbname, autocommit=False):
    if driver == "psycopg2":
        conn = psycopg2.connect(dbname=dbname)
        conn.autocommit = autocommit
        return conn
    return psycopg.connect(dbname=dbname, autocommit=autocommit)


DRIVERS = ("psycopg2", "psycopg")


def psycopg3_waiters(conn):
    """Backends blocked in barrier_wait() with a bound parameter: the
    worker's psycopg 3 connection (psycopg2 inlines the token)."""
    return support.scalar(
        conn, "SELECT count(*) FROM pg_stat_activity "
              "WHERE wait_event = 'transactionid' "
              "AND query LIKE %s", ("%barrier_wait($1::xid8%",))


def finished(result):
    poll(lambda: result.state in READY_STATES,
         "task %s to finish" % result.id)
    return result


class DriverTest(unittest.TestCase):

    def setUp(self):
        self.obs = support.observer()
        self.addCleanup(self.obs.close)

    def test_helpers_and_error_mapping_on_both_drivers(self):
        for driver in DRIVERS:
            with self.subTest(driver=driver):
                prod = connect(driver, support.dbname())
                ac = connect(driver, support.dbname(), autocommit=True)
                try:
                    token = tx_barrier.enqueue(prod)
                    self.assertEqual(tx_barrier.wait(ac, token, 0.05),
                                     tx_barrier.IN_PROGRESS)
                    prod.commit()
                    self.assertEqual(tx_barrier.wait(ac, token, 5),
                                     tx_barrier.COMMITTED)
                    self.assertEqual(
                        tx_barrier.wait_all(ac, [token], 5),
                        {token: tx_barrier.COMMITTED})
                    with self.assertRaises(tx_barrier.BarrierTokenError) as cm:
                        tx_barrier.wait(ac, 10 ** 12, 1)
                    self.assertEqual(cm.exception.sqlstate, "22023")
                finally:
                    prod.close()
                    ac.close()

    def test_missing_extension_on_both_drivers(self):
        for driver in DRIVERS:
            with self.subTest(driver=driver):
                conn = connect(driver, NOEXT, autocommit=True)
                try:
                    for call in (lambda: tx_barrier.enqueue(conn),
                                 lambda: tx_barrier.wait(conn, 1, 0),
                                 lambda: tx_barrier.status(conn, 1)):
                        with self.assertRaises(
                                tx_barrier.BarrierExtensionMissing) as cm:
                            call()
                        msg = str(cm.exception)
                        self.assertIn("CREATE EXTENSION tx_barrier", msg)
                        self.assertIn("portable/tx_barrier_portable.sql", msg)
                        self.assertIn(NOEXT, msg)
                        self.assertEqual(cm.exception.database, NOEXT)
                        self.assertEqual(cm.exception.sqlstate, "42883")
                finally:
                    conn.close()

    def test_portable_schema_off_search_path(self):
        """The portable edition is installed, but its schema is not on the
        search_path: the error names that fix, not only CREATE EXTENSION,
        which a managed server does not allow."""
        for driver in DRIVERS:
            with self.subTest(driver=driver):
                conn = connect(driver, OFFPATH, autocommit=True)
                try:
                    for call in (lambda: tx_barrier.enqueue(conn),
                                 lambda: tx_barrier.wait(conn, 1, 0),
                                 lambda: tx_barrier.wait_all(conn, [1], 0)):
                        with self.assertRaises(
                                tx_barrier.BarrierExtensionMissing) as cm:
                            call()
                        msg = str(cm.exception)
                        self.assertIn("search_path", msg)
                        self.assertIn("portable/tx_barrier_portable.sql", msg)
                        self.assertIn(OFFPATH, msg)
                        self.assertIn("barrier_", cm.exception.server_message)
                        self.assertEqual(cm.exception.sqlstate, "42883")
                    # Qualified, the functions are there: the fix is the path.
                    cur = conn.cursor()
                    cur.execute("SET search_path = txb_hidden")
                    cur.close()
                    self.assertEqual(tx_barrier.wait(conn, tx_barrier.enqueue(conn), 5),
                                     tx_barrier.COMMITTED)
                finally:
                    conn.close()

    def test_missing_extension_producer_task(self):
        conn = connect("psycopg", NOEXT)
        try:
            with self.assertRaises(tx_barrier.BarrierExtensionMissing) as cm:
                tasks.record_item.apply_async_with_barrier(
                    args=(0, "never"), db_connection=conn, using="noext")
            self.assertIn("CREATE EXTENSION tx_barrier", str(cm.exception))
        finally:
            conn.close()

    def test_missing_extension_worker(self):
        key = os.urandom(8).hex()
        prod = connect("psycopg2", support.dbname())
        try:
            r = tasks.record_item.apply_async_with_barrier(
                args=(0, key), db_connection=prod, using="noext")
            prod.commit()
        finally:
            prod.close()
        finished(r)
        self.assertEqual(r.state, "FAILURE")
        self.assertIsInstance(r.result, tx_barrier.BarrierExtensionMissing)
        self.assertIn("CREATE EXTENSION tx_barrier", str(r.result))
        self.assertIn(NOEXT, str(r.result))
        self.assertEqual(runs(self.obs, key), 0)

    def test_psycopg3_producer_and_worker(self):
        key = os.urandom(8).hex()
        conn = psycopg.connect(dbname=support.dbname())
        try:
            item_id = conn.execute(
                "INSERT INTO shop_item (key, value) VALUES (%s, 'from psycopg') "
                "RETURNING id", (key,)).fetchone()[0]
            # The worker checks alias plain3 with psycopg 3.
            r = tasks.record_item.apply_async_with_barrier(
                args=(item_id, key), db_connection=conn, using="plain3")
            poll(lambda: psycopg3_waiters(self.obs), "a psycopg 3 waiter")
            self.assertEqual(runs(self.obs, key), 0)
            conn.commit()
        finally:
            conn.close()
        finished(r)
        self.assertEqual(r.state, "SUCCESS", r.result)
        self.assertEqual(r.result["value"], "from psycopg")

    def test_psycopg3_producer_rollback(self):
        key = os.urandom(8).hex()
        conn = psycopg.connect(dbname=support.dbname())
        try:
            r = tasks.record_item.apply_async_with_barrier(
                args=(0, key), db_connection=conn, using="plain3")
            poll(lambda: psycopg3_waiters(self.obs), "a psycopg 3 waiter")
            conn.rollback()
        finally:
            conn.close()
        finished(r)
        self.assertEqual(r.state, "FAILURE")
        self.assertIsInstance(r.result, TransactionAborted)
        self.assertEqual(runs(self.obs, key), 0)


class AsyncioTest(unittest.TestCase):

    def test_enqueue_wait_wait_all(self):
        async def scenario():
            prod = await psycopg.AsyncConnection.connect(
                dbname=support.dbname())
            waiter = await psycopg.AsyncConnection.connect(
                dbname=support.dbname(), autocommit=True)
            try:
                t1 = await tx_barrier.aio.enqueue(prod)
                self.assertEqual(await tx_barrier.aio.status(waiter, t1),
                                 tx_barrier.IN_PROGRESS)
                # The wait suspends this coroutine only: the commit runs in
                # another task of the same loop while the server blocks.
                wait = asyncio.ensure_future(tx_barrier.aio.wait(waiter, t1, 30))
                # psycopg 3 binds parameters server-side: find the waiter
                # by its backend pid, not by the token in its query text.
                obs = support.observer()
                pid = waiter.info.backend_pid
                try:
                    await asyncio.get_running_loop().run_in_executor(
                        None, poll, lambda: support.scalar(
                            obs, "SELECT count(*) FROM pg_stat_activity "
                                 "WHERE pid = %s AND wait_event = "
                                 "'transactionid'", (pid,)),
                        "the asyncio waiter to block")
                finally:
                    obs.close()
                self.assertFalse(wait.done())
                await prod.commit()
                self.assertEqual(await wait, tx_barrier.COMMITTED)
                t2 = await tx_barrier.aio.enqueue(prod)
                await prod.rollback()
                self.assertEqual(
                    await tx_barrier.aio.wait_all(waiter, [t1, t2], 5),
                    {t1: tx_barrier.COMMITTED, t2: tx_barrier.ABORTED})
                with self.assertRaises(tx_barrier.BarrierTokenError):
                    await tx_barrier.aio.wait(waiter, 10 ** 12, 1)
            finally:
                await prod.close()
                await waiter.close()
            noext = await psycopg.AsyncConnection.connect(dbname=NOEXT)
            try:
                with self.assertRaises(tx_barrier.BarrierExtensionMissing):
                    await tx_barrier.aio.enqueue(noext)
            finally:
                await noext.close()

        asyncio.run(scenario())


if __name__ == "__main__":
    unittest.main()
