"""Ledger anchors, and the database refuses TRUNCATE of the ledger.

PostgreSQL: a statement trigger refusing TRUNCATE on ``consent_ledgerentry``
and on ``consent_ledgeranchor`` (a TRUNCATE of a table whose rows they
reference cascades to them and is refused too); anchors refuse DELETE and an
UPDATE of anything but their e-mail flag. The test suite's flushes (which
TRUNCATE) set ``session_replication_role = replica`` for their own
transaction (``tests/conftest.py``), which only a superuser may.

SQLite has no TRUNCATE; triggers refuse DELETE and the same UPDATEs of
anchors. SQLite drops a table's triggers when a migration rebuilds it: any
later migration that alters ``consent_ledgeranchor`` must create them again.
"""

from django.db import migrations, models
import django.utils.timezone

SIGNED_COLUMNS = (
    "id, created_at, ledger_through, track_count, row_count, root, signature, key_id"
)

PG_FORWARD = f"""
CREATE OR REPLACE FUNCTION consent_refuse_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '%% is append-only (TRUNCATE refused)', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER consent_ledger_no_truncate
    BEFORE TRUNCATE ON consent_ledgerentry
    FOR EACH STATEMENT EXECUTE FUNCTION consent_refuse_truncate();
CREATE TRIGGER consent_anchor_no_truncate
    BEFORE TRUNCATE ON consent_ledgeranchor
    FOR EACH STATEMENT EXECUTE FUNCTION consent_refuse_truncate();
CREATE OR REPLACE FUNCTION consent_anchor_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger anchors are append-only (%% refused)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER consent_anchor_no_update
    BEFORE UPDATE OF {SIGNED_COLUMNS} ON consent_ledgeranchor
    FOR EACH ROW EXECUTE FUNCTION consent_anchor_append_only();
CREATE TRIGGER consent_anchor_no_delete
    BEFORE DELETE ON consent_ledgeranchor
    FOR EACH ROW EXECUTE FUNCTION consent_anchor_append_only();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS consent_ledger_no_truncate ON consent_ledgerentry;
DROP FUNCTION IF EXISTS consent_refuse_truncate() CASCADE;
DROP FUNCTION IF EXISTS consent_anchor_append_only() CASCADE;
"""
SQLITE_FORWARD = [
    f"""
    CREATE TRIGGER IF NOT EXISTS consent_anchor_no_update
    BEFORE UPDATE OF {SIGNED_COLUMNS} ON consent_ledgeranchor
    BEGIN SELECT RAISE(ABORT, 'ledger anchors are append-only (UPDATE refused)');
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS consent_anchor_no_delete
    BEFORE DELETE ON consent_ledgeranchor
    BEGIN SELECT RAISE(ABORT, 'ledger anchors are append-only (DELETE refused)');
    END
    """,
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS consent_anchor_no_update",
    "DROP TRIGGER IF EXISTS consent_anchor_no_delete",
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

    dependencies = [
        ("consent", "0014_bulkjob_actor"),
    ]

    operations = [
        migrations.CreateModel(
            name="LedgerAnchor",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("ledger_through", models.PositiveBigIntegerField()),
                ("track_count", models.PositiveIntegerField()),
                ("row_count", models.PositiveBigIntegerField()),
                ("root", models.CharField(max_length=64)),
                ("signature", models.CharField(max_length=100)),
                ("key_id", models.CharField(max_length=64)),
                ("emailed_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "indexes": [models.Index(condition=models.Q(("emailed_at__isnull", True)), fields=["id"], name="consent_anchor_unsent")],
            },
        ),
        migrations.RunPython(forwards, backwards),
    ]
