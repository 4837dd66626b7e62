"""The receipt outbox's index: receipts not yet e-mailed.

The sweep and the digest read ``emailed_at IS NULL`` in id order; without
this index they walk every receipt ever sent (190 ms at 242,000 receipts,
growing with them). On PostgreSQL it is built ``CONCURRENTLY``: every switch
inserts a receipt, and a plain build would hold them all until it finished.
"""

from django.db import migrations, models

INDEX = models.Index(
    condition=models.Q(("emailed_at__isnull", True)),
    fields=["id"],
    name="consent_receipt_unsent",
)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS consent_receipt_unsent "
            "ON consent_receipt (id) WHERE emailed_at IS NULL"
        )
    else:
        schema_editor.add_index(apps.get_model("consent", "Receipt"), INDEX)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX CONCURRENTLY IF EXISTS consent_receipt_unsent")
    else:
        schema_editor.remove_index(apps.get_model("consent", "Receipt"), INDEX)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("consent", "0010_receipt_artist_index_covered_by_list_index")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="receipt", index=INDEX)],
            database_operations=[migrations.RunPython(forwards, backwards)],
        )
    ]
