from django.contrib.postgres.operations import CreateExtension
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        # CREATE EXTENSION needs a superuser; if the extension is already
        # there (created by the DBA) this does nothing, for any role.
        CreateExtension("tx_barrier"),
        migrations.CreateModel(
            name="Order",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                           serialize=False, verbose_name="ID")),
                ("item", models.CharField(max_length=100)),
                ("status", models.CharField(default="new", max_length=20)),
            ],
        ),
    ]
