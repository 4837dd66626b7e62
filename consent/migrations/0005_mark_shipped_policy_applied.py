"""Policy v1 needs no re-evaluation run: every consent row was created under it.

Without this mark, the beat sweep that restarts unfinished runs would queue v1
every minute."""

from django.db import migrations
from django.utils import timezone


def forwards(apps, schema_editor):
    apps.get_model("consent", "PolicyVersion").objects.filter(
        number=1, applied_at__isnull=True
    ).update(applied_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [("consent", "0004_idempotency_records")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
