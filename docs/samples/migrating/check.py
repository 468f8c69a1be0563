"""python3 check.py before|after [die]: places one order with before.py or
after.py and prints "order N task ID".  With "die", the process is killed
(SIGKILL) right after COMMIT returns, before any on_commit callback of the
order's transaction runs: the window in which a crash loses an on_commit
task."""
import os
import signal
import sys

import shop  # noqa: F401  (configures Django)
from django.db import transaction

module = __import__(sys.argv[1])
if sys.argv[2:] == ["die"]:
    with transaction.atomic():
        # Callbacks run in the order they were registered: this one first.
        transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))
        order_id, task_id = module.place_order("crash")
else:
    order_id, task_id = module.place_order("book")
print("order %d task %s" % (order_id, task_id))
