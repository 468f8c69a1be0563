from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.http import require_POST

from .models import Order
from .tasks import ship_order


@require_POST
@transaction.atomic
def create_order(request):
    # Save first: the task needs the order's id.
    order = Order.objects.create(item=request.POST["item"])
    # Published now, before COMMIT; the worker waits for this transaction.
    result = ship_order.apply_async_with_barrier(args=(order.id,))
    return JsonResponse({"order": order.id, "task": result.id,
                         "token": result.barrier_token})
