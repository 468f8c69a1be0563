from django.db import connection
from django.test import TestCase


class CreateOrderTests(TestCase):
    def test_task_waits_for_the_transaction(self):
        response = self.client.post("/orders/", {"item": "book"})
        self.assertEqual(response.status_code, 200)
        token = response.json()["token"]
        self.assertTrue(token.isdigit())
        # TestCase runs each test in a transaction that it rolls back at the
        # end: the task is in the broker, waiting for a transaction that is
        # still open here and will never commit.
        with connection.cursor() as cur:
            cur.execute("SELECT barrier_status(%s::xid8)::text", [token])
            self.assertEqual(cur.fetchone()[0], "in progress")
