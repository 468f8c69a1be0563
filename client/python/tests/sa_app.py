"""A Celery application without Django: SQLAlchemy models and sessions,
and the worker's barrier connections are SQLAlchemy engines (the Celery
setting ``tx_barrier_databases``).  Its worker runs with no Django settings
at all (tools/layers/50-python.sh starts it with ``-A sa_app``); it shares
the Django project's tables and databases.

Environment: PGHOST/PGPORT/PGUSER, TXB_PY_DB, TXB_PY_DB_NOEXT,
TXB_REDIS_URL, and TXB_PGBOUNCER_PORT (a PgBouncer in transaction pooling
mode in front of TXB_PY_DB) when there is one.
"""
import os

import sqlalchemy as sa
from celery import Celery
from sqlalchemy.orm import declarative_base, sessionmaker

from tx_barrier.celery import (TOKEN_HEADER, WAITS_HEADER,
                               TransactionBarrierTask)

DB = os.environ.get("TXB_PY_DB", "txb_python")
NOEXT = os.environ.get("TXB_PY_DB_NOEXT", "txb_python_noext")
BOUNCER_PORT = os.environ.get("TXB_PGBOUNCER_PORT")


def url(driver="psycopg2", database=DB, bouncer=False):
    """libpq's environment gives host, port and user; through PgBouncer,
    its port on 127.0.0.1."""
    if bouncer:
        return sa.engine.URL.create(
            "postgresql+" + driver, host="127.0.0.1", port=int(BOUNCER_PORT),
            username=os.environ.get("PGUSER") or "postgres",
            database=database)
    return sa.engine.URL.create("postgresql+" + driver, database=database)


def bouncer_engine(driver="psycopg2", **kw):
    """An engine through PgBouncer (transaction pooling): no pool of its own
    (PgBouncer is the pool) and, with psycopg 3, no server-side prepared
    statements."""
    args = {"prepare_threshold": None} if driver == "psycopg" else {}
    return sa.create_engine(url(driver, bouncer=True), connect_args=args,
                            poolclass=sa.pool.NullPool, **kw)


engine = sa.create_engine(url())
Session = sessionmaker(engine)

Base = declarative_base()


class Item(Base):
    __tablename__ = "shop_item"
    id = sa.Column(sa.BigInteger, primary_key=True)
    key = sa.Column(sa.String(64), nullable=False)
    value = sa.Column(sa.String(64), nullable=False)


class RunLog(Base):
    __tablename__ = "shop_runlog"
    id = sa.Column(sa.BigInteger, primary_key=True)
    key = sa.Column(sa.String(64), nullable=False)
    what = sa.Column(sa.String(64), nullable=False)
    value = sa.Column(sa.String(200))
    pid = sa.Column(sa.Integer, nullable=False)


_redis = os.environ.get("TXB_REDIS_URL", "redis://127.0.0.1:6379")
app = Celery("sa_app", broker=_redis + "/2", backend=_redis + "/3",
             set_as_current=False)
app.conf.update(
    task_serializer="json", result_serializer="json", accept_content=["json"],
    worker_prefetch_multiplier=1, broker_connection_retry_on_startup=True,
    task_default_queue="txb_sa",
    # Where the worker checks tokens: engines, not Django.
    tx_barrier_databases={
        "default": engine,
        "noext": sa.create_engine(url(database=NOEXT)),
        **({"bouncer": bouncer_engine()} if BOUNCER_PORT else {}),
    },
)


def _log(session, key, what, value=None):
    session.add(RunLog(key=key, what=what, value=value, pid=os.getpid()))


def _record(task, item_id, key):
    """Reads the producer's row, which must be committed by now, and says
    what the task saw."""
    self = task
    with Session.begin() as s:
        item = s.get(Item, item_id)
        value = item.value if item is not None else None
        _log(s, key, "body", value)
    return {"value": value, "task_id": self.request.id,
            "token": self.request.get(TOKEN_HEADER),
            "waits": self.request.get(WAITS_HEADER)}


@app.task(base=TransactionBarrierTask, bind=True, name="sa.record_item")
def record_item(self, item_id, key):
    return _record(self, item_id, key)


@app.task(base=TransactionBarrierTask, bind=True, barrier_timeout=0.5,
          name="sa.record_item_impatient")
def record_item_impatient(self, item_id, key):
    return _record(self, item_id, key)


@app.task(name="sa.record_error")
def record_error(request, exc, traceback, key):
    with Session.begin() as s:
        _log(s, key, "errback", type(exc).__name__)
