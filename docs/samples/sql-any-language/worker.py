"""Worker in Python (psycopg 3): python3 worker.py TOKEN NOTE_ID"""
import sys

import psycopg

token, note_id = sys.argv[1], int(sys.argv[2])
with psycopg.connect(autocommit=True) as conn:     # wait in autocommit, then read
    (state,) = conn.execute("SELECT barrier_wait(%s::xid8, '30s')::text", (token,)).fetchone()
    if state == "committed":
        (body,) = conn.execute("SELECT body FROM notes WHERE id = %s", (note_id,)).fetchone()
        print("committed: %s" % body)
    else:
        print(state)                                # aborted, or in progress after 30 s
