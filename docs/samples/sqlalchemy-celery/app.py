"""A Flask application: the view writes the order and spawns its tasks in
one transaction."""
from flask import Flask, jsonify, request

import tx_barrier.celery  # noqa: F401  (follows SQLAlchemy sessions from now on)
from models import Order, Session
from tasks import print_gift_card, ship_order

app = Flask(__name__)


def place_order(session, item, gift_note=None):
    """Adds the order and spawns its tasks in the session's transaction."""
    order = Order(item=item)
    session.add(order)
    session.flush()                      # order.id is set: INSERT sent
    shipping = ship_order.apply_async_with_barrier(args=(order.id,))
    card = None
    if gift_note is not None:
        try:
            with session.begin_nested():             # SAVEPOINT
                order.gift_note = gift_note
                card = print_gift_card.delay(order.id)   # a barrier too
                if len(gift_note) > 40:
                    raise ValueError("gift note too long")
        except ValueError:
            pass      # savepoint rolled back: no note, no card; order stays
    return order, shipping, card


@app.post("/orders")
def create_order():
    with Session.begin() as session:                 # BEGIN ... COMMIT
        order, shipping, card = place_order(
            session, request.json["item"], request.json.get("gift_note"))
        body = {"order": order.id,
                "task": shipping.id,                 # real before COMMIT
                "card_task": card.id if card else None}
    return jsonify(body), 201
