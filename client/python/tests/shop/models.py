from django.db import models


class Item(models.Model):
    """Data a producer changes in a transaction before spawning a task."""
    key = models.CharField(max_length=64, db_index=True)
    value = models.CharField(max_length=64)


class RunLog(models.Model):
    """One row each time a task body (or callback, or errback) runs.

    Written by the worker in autocommit, so it is visible at once to the
    tests, which poll it.
    """
    key = models.CharField(max_length=64, db_index=True)
    what = models.CharField(max_length=64)
    value = models.CharField(max_length=200, null=True)
    pid = models.IntegerField()
