"""An RQ producer for the crash tests (SQLAlchemy, no Django), run as a
child process: "after-commit KEY" enqueues, commits and SIGKILLs itself in
the session's after_commit hook; "before-commit KEY" enqueues and blocks
with the transaction open until killed.  Prints "job <id> <token>"."""
import os
import signal
import sys

from redis import Redis
from sqlalchemy import event

import rq_jobs
from sa_app import Item, Session
from tx_barrier.rq import BarrierQueue


def main(mode, key):
    queue = BarrierQueue(rq_jobs.QUEUE,
                         connection=Redis.from_url(rq_jobs.REDIS_URL))
    with Session.begin() as session:
        item = Item(key=key, value="v-" + key)
        session.add(item)
        session.flush()
        job = queue.enqueue(rq_jobs.record_item, item.id, key)
        print("job %s %s" % (job.id, job.barrier_token), flush=True)
        if mode == "before-commit":
            sys.stdin.read()
            raise SystemExit("stdin closed before the kill")
        event.listen(session, "after_commit",
                     lambda s: os.kill(os.getpid(), signal.SIGKILL))
    raise SystemExit("still alive after COMMIT")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
