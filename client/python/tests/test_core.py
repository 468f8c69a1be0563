"""tx_barrier's SQL helpers and connection handling, against a real server
(no broker, no worker)."""
import os
import threading
import unittest

import support
import psycopg2
from django.db import connections, transaction

import tx_barrier
from tx_barrier import db as txdb

# The portable edition (portable/, installed by TXB_INSTALL_SQL) differs
# where its README says so: a token carries only the low 32 bits of the
# xid, and markers live in one database.
PORTABLE = bool(os.environ.get("TXB_INSTALL_SQL"))


class CoreTest(unittest.TestCase):

    def setUp(self):
        self.producer = psycopg2.connect(dbname=support.dbname())
        self.obs = support.observer()

    def tearDown(self):
        self.producer.close()
        self.obs.close()

    def test_in_transaction(self):
        self.assertTrue(tx_barrier.in_transaction(self.producer))
        self.assertFalse(tx_barrier.in_transaction(self.obs))
        with self.obs.cursor() as cur:
            cur.execute("BEGIN")
            self.assertTrue(tx_barrier.in_transaction(self.obs))
            cur.execute("ROLLBACK")

    def test_commit_and_abort(self):
        token = tx_barrier.enqueue(self.producer)
        self.assertTrue(token.isdigit())
        self.assertEqual(tx_barrier.status(self.obs, token), tx_barrier.IN_PROGRESS)
        self.assertEqual(tx_barrier.wait(self.obs, token, 0), tx_barrier.IN_PROGRESS)
        self.assertEqual(tx_barrier.wait(self.obs, token, 0.05), tx_barrier.IN_PROGRESS)
        # The waiter blocks on the lock; commit from another thread once it does.
        blocked = threading.Event()

        def commit_when_blocked():
            c2 = support.observer()
            try:
                support.wait_until_blocked(c2, token)
            finally:
                c2.close()
            blocked.set()
            self.producer.commit()

        t = threading.Thread(target=commit_when_blocked)
        t.start()
        self.assertEqual(tx_barrier.wait(self.obs, token), tx_barrier.COMMITTED)
        t.join()
        self.assertTrue(blocked.is_set())

        aborted = tx_barrier.enqueue(self.producer)
        self.producer.rollback()
        self.assertEqual(tx_barrier.wait(self.obs, aborted, 5), tx_barrier.ABORTED)
        self.assertEqual(tx_barrier.wait_all(self.obs, [token, int(aborted)], 1),
                         {token: tx_barrier.COMMITTED, aborted: tx_barrier.ABORTED})

    def test_own_transaction_is_in_progress(self):
        token = tx_barrier.enqueue(self.producer)
        self.assertEqual(tx_barrier.wait(self.producer, token, 5),
                         tx_barrier.IN_PROGRESS)
        self.producer.rollback()

    def test_bad_tokens(self):
        with self.assertRaises(tx_barrier.BarrierTokenError) as cm:
            tx_barrier.wait(self.obs, 1 << 62)
        self.assertEqual(cm.exception.sqlstate, "22023")
        with self.assertRaises(ValueError):
            tx_barrier.normalize_token(-1)
        with self.assertRaises(ValueError):
            tx_barrier.wait(self.obs, 1, -1)

    def test_django_producer_token(self):
        # Autocommit: no transaction, no token.
        self.assertIsNone(txdb.producer_token())
        with transaction.atomic():
            top = txdb.producer_token()
            xid = connections["default"].cursor()
            xid.execute("SELECT pg_current_xact_id()::text")
            if PORTABLE:
                self.assertEqual(int(top) % 2**32, int(xid.fetchone()[0]) % 2**32)
            else:
                self.assertEqual(top, xid.fetchone()[0])
            with transaction.atomic():
                sub = txdb.producer_token()
            self.assertNotEqual(top, sub)       # the savepoint's own xid
            self.assertEqual(tx_barrier.status(self.obs, sub),
                             tx_barrier.IN_PROGRESS)
            transaction.set_rollback(True)
        self.assertEqual(tx_barrier.status(self.obs, top), tx_barrier.ABORTED)
        self.assertEqual(tx_barrier.status(self.obs, sub), tx_barrier.ABORTED)

    def test_psycopg2_autocommit_producer(self):
        self.assertIsNone(txdb.producer_token(connection=self.obs))
        token = txdb.producer_token(connection=self.producer)
        self.assertIsNotNone(token)
        self.producer.commit()
        self.assertEqual(tx_barrier.status(self.obs, token), tx_barrier.COMMITTED)

    def test_worker_side_dsn_and_django(self):
        token = tx_barrier.enqueue(self.producer)
        self.producer.commit()
        conf = {"tx_barrier_databases": {"plain": "dbname=" + support.dbname()}}
        self.assertEqual(txdb.worker_wait(token, 1, "plain", conf),
                         tx_barrier.COMMITTED)
        self.assertEqual(txdb.worker_wait(token, 1, "other", conf),
                         tx_barrier.ABORTED if PORTABLE else tx_barrier.COMMITTED)
        self.assertEqual(txdb.worker_wait(token, 1, None, {}),
                         tx_barrier.COMMITTED)


if __name__ == "__main__":
    unittest.main()
