import os

SECRET_KEY = "change-me"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "proj.urls"
INSTALLED_APPS = ["shop"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("SHOP_DB", "shop"),
        "USER": os.environ.get("PGUSER", "shop_app"),
        "HOST": os.environ.get("PGHOST", ""),
        "PORT": os.environ.get("PGPORT", ""),
        # The test database is copied from a template that has the
        # extension (see "Django's test database").
        "TEST": {"TEMPLATE": "shop_template"},
    }
}

CELERY_BROKER_URL = os.environ.get("REDIS_URL", "redis://localhost:6379") + "/0"
CELERY_RESULT_BACKEND = os.environ.get("REDIS_URL", "redis://localhost:6379") + "/1"
# At-least-once delivery while a task waits for its transaction.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True

# Where ship_order tells the warehouse (a stand-in for an e-mail or an API call).
WAREHOUSE_LOG = os.environ.get("WAREHOUSE_LOG", "/tmp/warehouse.log")
