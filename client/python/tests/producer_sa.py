"""A SQLAlchemy web process stand-in for the crash tests (no Django), run
as a child process.

    producer_sa.py after-commit KEY   publish, COMMIT, then SIGKILL itself
                                      in the session's after_commit hook
    producer_sa.py before-commit KEY  publish, print, then block with the
                                      transaction open until killed

It prints "task <id> <token>" once the barrier task is published.
"""
import os
import signal
import sys

from sqlalchemy import event

from sa_app import Item, Session, record_item


def main(mode, key):
    with Session.begin() as session:
        item = Item(key=key, value="v-" + key)
        session.add(item)
        session.flush()
        result = record_item.apply_async_with_barrier(args=(item.id, key))
        print("task %s %s" % (result.id, result.barrier_token), flush=True)
        if mode == "before-commit":
            sys.stdin.read()        # the test kills us here
            raise SystemExit("stdin closed before the kill")
        event.listen(session, "after_commit",
                     lambda s: os.kill(os.getpid(), signal.SIGKILL))
    raise SystemExit("still alive after COMMIT")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
