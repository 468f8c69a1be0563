"""A web process stand-in for the crash tests, run as a child process.

    producer.py after-commit KEY   publish, COMMIT, then SIGKILL itself in
                                   the first on_commit hook -- before a
                                   second hook would have published a task
                                   the on_commit way
    producer.py before-commit KEY  publish, print the token, then block with
                                   the transaction open until killed

It prints "task <id> <token>" once the barrier task is published.
"""
import os
import signal
import sys

import support  # noqa: F401  (sets Django up)
from django.db import transaction
from shop.models import Item
from shop.tasks import record_item


def main(mode, key):
    with transaction.atomic():
        item = Item.objects.create(key=key, value="v-" + key)
        result = record_item.apply_async_with_barrier(args=(item.id, key))
        print("task %s %s" % (result.id, result.barrier_token), flush=True)
        if mode == "before-commit":
            sys.stdin.read()        # the test kills us here
            raise SystemExit("stdin closed before the kill")
        transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))
        transaction.on_commit(
            lambda: record_item.delay(item.id, key + "-on-commit"))
    raise SystemExit("still alive after COMMIT")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
