from django.db import transaction

from shop import create_order, ship


def place_order(item):
    with transaction.atomic():
        order_id = create_order(item)
        # Published after COMMIT returns, by this process.
        transaction.on_commit(lambda: ship.delay(order_id))
    return order_id, None        # no task id: nothing is published yet at COMMIT
