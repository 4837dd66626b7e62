"""Drop the trigram index of 0002: measured on 1,000,000 tracks, PostgreSQL
never chose it for a one-artist search (scanning the artist's own index range
was cheaper), while it slowed every insert. Searches are scoped to one artist's
rows through the (artist, …) indexes instead."""

from django.db import migrations


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS catalog_track_artist_title_trgm")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_drop_redundant_indexes")]

    operations = [migrations.RunPython(drop_index, migrations.RunPython.noop)]
