"""Settings of the small Django project the adapter's tests run against.

Everything comes from the environment that tools/layers/50-python.sh sets:
PGHOST/PGPORT/PGUSER (libpq's), TXB_PY_DB and TXB_PY_DB_OTHER (two databases
with the tx_barrier extension) and TXB_REDIS_URL (the broker).
"""
import os

SECRET_KEY = "tx-barrier-tests-only"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["shop"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _db(name):
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "HOST": os.environ.get("PGHOST", ""),
        "PORT": os.environ.get("PGPORT", ""),
        "USER": os.environ.get("PGUSER", ""),
    }


DATABASES = {
    "default": _db(os.environ.get("TXB_PY_DB", "txb_python")),
    "other": _db(os.environ.get("TXB_PY_DB_OTHER", "txb_python_other")),
}

_redis = os.environ.get("TXB_REDIS_URL", "redis://127.0.0.1:6379")
CELERY_BROKER_URL = _redis + "/0"
CELERY_RESULT_BACKEND = _redis + "/1"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# A database the worker reaches through a plain DSN rather than Django: the
# tests' psycopg2 producers name it with using="plain".
CELERY_TX_BARRIER_DATABASES = {
    "plain": " ".join(
        "%s=%s" % (k, v) for k, v in (
            ("host", os.environ.get("PGHOST")),
            ("port", os.environ.get("PGPORT")),
            ("user", os.environ.get("PGUSER")),
            ("dbname", os.environ.get("TXB_PY_DB", "txb_python")),
        ) if v),
    "plain3": " ".join(
        "%s=%s" % (k, v) for k, v in (
            ("host", os.environ.get("PGHOST")),
            ("port", os.environ.get("PGPORT")),
            ("user", os.environ.get("PGUSER")),
            ("dbname", os.environ.get("TXB_PY_DB", "txb_python")),
        ) if v),
    "noext": " ".join(
        "%s=%s" % (k, v) for k, v in (
            ("host", os.environ.get("PGHOST")),
            ("port", os.environ.get("PGPORT")),
            ("user", os.environ.get("PGUSER")),
            ("dbname", os.environ.get("TXB_PY_DB_NOEXT", "txb_python_noext")),
        ) if v),
    # Nothing listens on port 1: the worker cannot reach this one.
    "unreachable": "host=127.0.0.1 port=1 dbname=none connect_timeout=2",
}

# The worker checks tokens of alias "plain3" with psycopg 3.
CELERY_TX_BARRIER_DRIVER = {"plain3": "psycopg"}
