"""Recreate the SQLite ledger triggers.

SQLite alters a column by rebuilding the table, which drops its triggers:
0006 (the track column's index) did that to ``consent_ledgerentry``. Any later
migration that alters that table on SQLite must run ``ensure_triggers`` again.
PostgreSQL keeps its trigger through such changes; this is a no-op there.
"""

from django.db import migrations

SQLITE_TRIGGERS = [
    """
    CREATE TRIGGER IF NOT EXISTS consent_ledger_no_update
    BEFORE UPDATE ON consent_ledgerentry
    BEGIN SELECT RAISE(ABORT, 'consent ledger rows are append-only (UPDATE refused)');
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS consent_ledger_no_delete
    BEFORE DELETE ON consent_ledgerentry
    WHEN EXISTS (SELECT 1 FROM catalog_track WHERE id = OLD.track_id)
    BEGIN SELECT RAISE(ABORT, 'consent ledger rows are append-only (DELETE refused)');
    END
    """,
]


def ensure_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_TRIGGERS:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("consent", "0007_ledger_request_index")]

    operations = [migrations.RunPython(ensure_triggers, migrations.RunPython.noop)]
