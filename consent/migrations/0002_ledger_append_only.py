"""The database refuses UPDATE and DELETE on ledger rows.

PostgreSQL: a trigger raising on every UPDATE or DELETE (``TRUNCATE``, used
only by test-database flushes, is not a row operation). SQLite: triggers that
abort an UPDATE, and a DELETE while the row's track still exists (SQLite has
no TRUNCATE, and a test flush deletes the tracks first).
"""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION consent_ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'consent ledger rows are append-only (%% refused)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER consent_ledger_append_only
    BEFORE UPDATE OR DELETE ON consent_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION consent_ledger_append_only();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS consent_ledger_append_only ON consent_ledgerentry;
DROP FUNCTION IF EXISTS consent_ledger_append_only();
"""
SQLITE_FORWARD = [
    """
    CREATE TRIGGER consent_ledger_no_update BEFORE UPDATE ON consent_ledgerentry
    BEGIN SELECT RAISE(ABORT, 'consent ledger rows are append-only (UPDATE refused)');
    END
    """,
    """
    CREATE TRIGGER consent_ledger_no_delete BEFORE DELETE ON consent_ledgerentry
    WHEN EXISTS (SELECT 1 FROM catalog_track WHERE id = OLD.track_id)
    BEGIN SELECT RAISE(ABORT, 'consent ledger rows are append-only (DELETE refused)');
    END
    """,
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS consent_ledger_no_update",
    "DROP TRIGGER IF EXISTS consent_ledger_no_delete",
]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD)
    elif vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("consent", "0001_consent_core")]

    operations = [migrations.RunPython(forwards, backwards)]
