"""``consent_switch()`` from its versioned file: version 2
(``consent/sql/consent_switch_v2.sql``), whose receipt names the principal
read under the lock (slot 8) rather than one the caller read before it.

Reversed, it re-installs version 1 (``consent_switch_v1.sql``, the text of
migration 0009). Each file's SHA-256 is pinned here: a released file edited in
place stops ``migrate`` (``consent.sql.SqlSourceChanged``). The arguments and
results are those of version 1, so ``CREATE OR REPLACE`` swaps the body in
place and prepared calls of it stay valid.

Deploy this before the code that fills slot 8: version 1 fails a template
with eight slots ("too few arguments for format()"), while version 2 takes
the old seven-slot templates (format() ignores an unused argument).
"""

from django.db import migrations

from consent.sql import sql_source

PINNED_SHA256 = {
    "consent_switch_v1": "1b55ed8b46929958e95eae6fd331b38be461c86c69164c53b4ac0becc9d23500",
    "consent_switch_v2": "593159d66c8807b7ecde167748218ed87f5d4eade8edbabcffb5c6f7dffe159a",
}


def _install(name, schema_editor):
    # Read (and its hash checked) on every database, so an edited file stops
    # the embedded stack's migrate too, not only PostgreSQL's.
    source = sql_source(name, sha256=PINNED_SHA256[name])
    if schema_editor.connection.vendor == "postgresql":
        # No parameters: a '%' in the file is not a placeholder.
        schema_editor.execute(source, params=None)


def install_v2(apps, schema_editor):
    _install("consent_switch_v2", schema_editor)


def install_v1(apps, schema_editor):
    _install("consent_switch_v1", schema_editor)


class Migration(migrations.Migration):
    dependencies = [("consent", "0012_bulkjob_lease_and_check_runs")]

    operations = [migrations.RunPython(install_v2, install_v1)]
