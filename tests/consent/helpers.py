"""Shared helpers of the consent tests."""

from contextlib import contextmanager

from django.db import connection

from catalog.importer import CatalogRow
from catalog.models import LicenseClass, Track
from consent.models import BulkJob
from consent.services import bulk_change_start, catalog_import, consent_bulk_set_chunk
from consent.uses import Use

# The four uses by short names, as the tests write them.
GENAI, TRAINING, INFERENCE, MINING = (
    Use.GENAI_TRAINING.value,
    Use.AI_TRAINING.value,
    Use.AI_INFERENCE.value,
    Use.DATA_MINING.value,
)


def track_reclassify(track: Track, *, license_class: str, label: str = "") -> bool:
    """Move a track to another licence class (``label``: the label's name) the
    way production does: a catalogue import row for its ISRC, everything else
    unchanged. Returns whether the import updated the track; ``track`` is
    reloaded."""
    track.refresh_from_db()
    assert track.isrc, "only tracks with an ISRC are in the catalogue import"
    report = catalog_import(
        rows=[
            CatalogRow(
                line=2,
                isrc=track.isrc,
                title=track.title,
                artist_email=track.artist.email,
                license_class=license_class,
                label=label if license_class == LicenseClass.LABEL else "",
                duration_ms=track.duration_ms,
            )
        ]
    )
    assert report.rejected == 0, report.as_dict()
    track.refresh_from_db()
    return report.updated == 1


@contextmanager
def append_only_triggers_off(*tables: str):
    """A cursor with the append-only triggers of ``tables`` (default: the
    ledger) switched off, as a superuser could, in this transaction only:
    both databases roll it back with the test."""
    tables = tables or ("consent_ledgerentry",)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
            yield cursor
            cursor.execute("SET LOCAL session_replication_role = origin")
            return
        # SQLite has no switch: drop the triggers and create them again.
        marks = ", ".join(["%s"] * len(tables))
        cursor.execute(
            "SELECT name, sql FROM sqlite_master "  # noqa: S608 - placeholders only
            f"WHERE type = 'trigger' AND tbl_name IN ({marks})",
            list(tables),
        )
        triggers = cursor.fetchall()
        assert triggers, "no append-only trigger to go around"
        for name, _ in triggers:
            cursor.execute(f'DROP TRIGGER "{name}"')
        yield cursor
        for _, create in triggers:
            cursor.execute(create)


def registry_consumer():
    """The built-in registry consumer (created by migration 0018; made again
    here because transactional tests flush it)."""
    from consent.models import Consumer

    consumer, _ = Consumer.objects.get_or_create(
        kind=Consumer.Kind.REGISTRY,
        defaults={
            "name": "Training-data registry",
            "uses": ["genai-training", "ai-training", "ai-inference", "data-mining"],
        },
    )
    return consumer


@contextmanager
def advisory_lock_held_elsewhere(key: int):
    """Hold the PostgreSQL advisory lock ``key`` on a connection of its own
    (another runner at work) for the block; let go before closing, since a
    closed connection's server process may hold the lock a moment longer."""
    from django.db import connections

    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
        yield
    finally:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        other.close()


def bulk_job_after_first_chunk(*, artist, tracks: list[Track], **fields) -> BulkJob:
    """A bulk "yes to generative AI training" of ``tracks`` whose first chunk
    (the first track) was done before its worker died: its cursor, counts and
    ``fields`` as the job's row then holds them."""
    job = bulk_change_start(
        artist=artist,
        use=GENAI,
        state="granted",
        actor=artist,
        track_public_ids=[t.public_id for t in tracks],
    )
    consent_bulk_set_chunk(
        artist=artist,
        track_ids=[tracks[0].pk],
        use=GENAI,
        state="granted",
        actor=artist,
        source="bulk",
        request_id=job.request_id,
    )
    BulkJob.objects.filter(pk=job.pk).update(
        cursor=tracks[0].pk, processed=1, changed=1, **fields
    )
    return job
