"""Leave free space in catalog_track's pages (PostgreSQL only).

Consent changes bump ``consent_version`` on every track they touch; a policy
change does so for up to every track. With free space on the page and no
indexed column changed, PostgreSQL updates the row in place (a HOT update)
instead of adding an entry to each of the table's indexes. Applies to pages
written from now on (``VACUUM FULL catalog_track`` rewrites existing ones).
"""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE catalog_track SET (fillfactor = 80)")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE catalog_track RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0005_track_consent_version")]

    operations = [migrations.RunPython(forwards, backwards)]
