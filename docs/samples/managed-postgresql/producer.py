"""The producer, unchanged from the C edition: tx_barrier.enqueue()."""
import os

import psycopg2
import tx_barrier

conn = psycopg2.connect(os.environ["DATABASE_URL"])
with conn.cursor() as cur:
    cur.execute("INSERT INTO orders (item) VALUES ('book') RETURNING id")
    (order_id,) = cur.fetchone()
token = tx_barrier.enqueue(conn)             # SELECT barrier_enqueue()
print("order %d token %s" % (order_id, token), flush=True)   # publish it now
if input("COMMIT or ROLLBACK? ").strip().upper() == "COMMIT":
    conn.commit()
else:
    conn.rollback()
