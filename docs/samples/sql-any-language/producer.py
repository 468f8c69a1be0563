"""Producer in Python (psycopg 3): python3 producer.py TEXT"""
import sys

import psycopg

with psycopg.connect() as conn:                    # PG* environment variables
    with conn.cursor() as cur:                     # a transaction is open from here
        cur.execute("INSERT INTO notes (body) VALUES (%s) RETURNING id", (sys.argv[1],))
        (note_id,) = cur.fetchone()
        cur.execute("SELECT barrier_enqueue()::text")
        (token,) = cur.fetchone()
    # Publish before COMMIT: here, one line to stdout for whoever runs the worker.
    print("token %s note %d" % (token, note_id), flush=True)
    if input("COMMIT or ROLLBACK? ").strip().upper() == "COMMIT":
        conn.commit()
    else:
        conn.rollback()
