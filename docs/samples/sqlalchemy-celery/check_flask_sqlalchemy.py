"""Flask-SQLAlchemy's db.session: a committed order is shipped; an order the
view rejects after spawning its task (409) is rolled back and its task is
not run (run.sh counts the worker's "not run" lines)."""
import psycopg2

from app_flask_sqlalchemy import app as flask_app
from models import engine
from tasks import app

web = flask_app.test_client()
r = web.post("/orders", json={"item": "lamp shade"})
assert r.status_code == 201, r.data
body = r.get_json()
assert app.AsyncResult(body["task"]).get(timeout=30) == \
    "shipped order %d: lamp shade" % body["order"]
r = web.post("/orders", json={"item": "anvil", "quantity": 11})
assert r.status_code == 409, r.data
with psycopg2.connect(dbname=engine.url.database) as conn, conn.cursor() as cur:
    cur.execute("SELECT count(*) FROM orders WHERE item = 'anvil'")
    assert cur.fetchone()[0] == 0
conn.close()
print("Flask-SQLAlchemy: order %d shipped; the rejected order rolled back" % body["order"])
