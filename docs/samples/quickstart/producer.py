"""Creates an order and spawns its task inside the same transaction."""
import sys

import psycopg2

from tasks import ship

conn = psycopg2.connect("dbname=shop")
with conn.cursor() as cur:
    cur.execute("INSERT INTO orders (status) VALUES ('paid') RETURNING id")
    order_id = cur.fetchone()[0]

# Published now, before COMMIT, with the transaction's token in its headers.
result = ship.apply_async_with_barrier(args=(order_id,), db_connection=conn)
print(f"order {order_id}: task {result.id} published with token {result.barrier_token}")

answer = input("COMMIT or ROLLBACK? ").strip().upper()
if answer == "COMMIT":
    conn.commit()       # the waiting worker wakes up and ships the order
else:
    conn.rollback()     # the worker learns "aborted" and does not run the task
print(answer, "done")
