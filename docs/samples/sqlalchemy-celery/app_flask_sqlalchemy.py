"""The same view with Flask-SQLAlchemy: db.session is a SQLAlchemy Session,
so a barrier task inside `with db.session.begin():` takes its token from
it."""
from flask import Flask, abort, jsonify, request
from flask_sqlalchemy import SQLAlchemy

import tx_barrier.celery  # noqa: F401  (follows SQLAlchemy sessions from now on)
from models import DATABASE_URL, Order
from tasks import ship_order

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = DATABASE_URL
db = SQLAlchemy(app)


@app.post("/orders")
def create_order():
    with db.session.begin():                         # BEGIN ... COMMIT
        order = Order(item=request.json["item"])
        db.session.add(order)
        db.session.flush()
        shipping = ship_order.delay(order.id)        # takes a barrier
        if request.json.get("quantity", 1) > 10:
            abort(409, "not enough stock")           # rolls back: not shipped
        body = {"order": order.id, "task": shipping.id}
    return jsonify(body), 201
