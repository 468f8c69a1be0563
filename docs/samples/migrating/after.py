from django.db import transaction

from shop import create_order, ship_with_barrier


def place_order(item):
    with transaction.atomic():
        order_id = create_order(item)
        # Published now, before COMMIT; the worker waits for the COMMIT.
        result = ship_with_barrier.apply_async_with_barrier(args=(order_id,))
    return order_id, result.id   # the real task id, known before COMMIT
