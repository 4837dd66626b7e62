"""``consent_switch()`` version 3 (``consent/sql/consent_switch_v3.sql``),
which also records the change in the propagation outbox
(``consent_propagationchange``, created by 0016) as the Python path does.

Reversed, it re-installs version 2. The arguments and results are those of
version 2, so ``CREATE OR REPLACE`` swaps the body in place and prepared calls
of it stay valid. Each file's SHA-256 is pinned here.
"""

from django.db import migrations

from consent.sql import sql_source

PINNED_SHA256 = {
    "consent_switch_v2": "593159d66c8807b7ecde167748218ed87f5d4eade8edbabcffb5c6f7dffe159a",
    "consent_switch_v3": "6765b1948690d49c565444370d712216db39231ee55ecb10ff77af1e24c7b738",
}


def _install(name, schema_editor):
    # Read (and its hash checked) on every database, so an edited file stops
    # the embedded stack's migrate too, not only PostgreSQL's.
    source = sql_source(name, sha256=PINNED_SHA256[name])
    if schema_editor.connection.vendor == "postgresql":
        # No parameters: a '%' in the file is not a placeholder.
        schema_editor.execute(source, params=None)


def install_v3(apps, schema_editor):
    _install("consent_switch_v3", schema_editor)


def install_v2(apps, schema_editor):
    _install("consent_switch_v2", schema_editor)


class Migration(migrations.Migration):
    dependencies = [("consent", "0016_propagation")]

    operations = [migrations.RunPython(install_v3, install_v2)]
