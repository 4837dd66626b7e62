"""Trigram index for searching an artist's titles (PostgreSQL only).

``title__icontains`` compiles to ``UPPER(title::text) LIKE UPPER(%s)``; a GIN
index over (artist_id, UPPER(title) gin_trgm_ops) answers it for one artist
without scanning all of that artist's rows. SQLite has no such index and
scans, which is fine at the embedded scale.
"""

from django.db import migrations

INDEX = "catalog_track_artist_title_trgm"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON catalog_track "
        "USING gin (artist_id, (UPPER(title::text)) gin_trgm_ops)"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_tracks_and_labels")]

    operations = [migrations.RunPython(create_index, drop_index)]
