"""The Celery application of the test project, configured from Django's
settings (the CELERY_ namespace), as Celery's Django guide does it."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproj.settings")

app = Celery("testproj")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["shop"])
