from celery import shared_task
from django.conf import settings
from tx_barrier.celery import TransactionBarrierTask

from .models import Order


@shared_task(base=TransactionBarrierTask)
def ship_order(order_id):
    # Runs only after the transaction that spawned it has committed, so the
    # order is there; never runs if that transaction rolled back.
    order = Order.objects.get(id=order_id)
    with open(settings.WAREHOUSE_LOG, "a") as log:      # the outside world
        log.write("ship order %d: %s\n" % (order.id, order.item))
    order.status = "shipped"
    order.save(update_fields=["status"])
