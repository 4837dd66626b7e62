"""Benchmark catalogues: consent rows for a million freshly generated tracks.

Demo and benchmark code only (``seed_demo --artists``); production writes go
through ``consent.services``.
"""

from django.db import connection, transaction
from django.utils import timezone

from consent.models import Source, TrackConsent
from consent.services.eligibility import (
    eligibility_refresh,
    trackconsent_create_missing,
    tracks_that_may_start_eligible,
)
from consent.uses import USE_ORDER

_BULK_LOAD_INDEXES = (
    "consent_tc_artist_decision",
    "consent_tc_artist_eligible",
    "consent_tc_class_eligible",
    "consent_tc_artist_changed",
)


def trackconsent_bulk_load(*, artist_ids: list[int]) -> int:
    """Create the consent rows of freshly generated artists' tracks, fast.

    For ``seed_demo --artists`` (benchmark catalogues) on PostgreSQL: one
    transaction drops the secondary indexes, inserts four rows per track of
    these artists (they have none yet) and recreates the indexes from their
    saved definitions, which is several times faster than maintaining them
    row by row for millions of rows. Elsewhere, ``trackconsent_create_missing``.
    """
    if connection.vendor != "postgresql":
        return trackconsent_create_missing(track_ids=None, source=Source.IMPORT)
    table = TrackConsent._meta.db_table
    uses = ", ".join(["(%s)"] * len(USE_ORDER))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename = %s AND indexname = ANY(%s)",
            [table, list(_BULK_LOAD_INDEXES)],
        )
        definitions = cursor.fetchall()
        for name, _ in definitions:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute(
            f"WITH u(use) AS (VALUES {uses}) INSERT INTO {table} "  # noqa: S608 - model table, placeholders; values are parameters
            "(track_id, use, decision, eligible, artist_id, license_class, "
            "updated_at) SELECT t.id, u.use, '', FALSE, t.artist_id, "
            "t.license_class, %s FROM catalog_track t CROSS JOIN u "
            "WHERE t.artist_id = ANY(%s)",
            [*USE_ORDER, timezone.now(), list(artist_ids)],
        )
        created = cursor.rowcount
        # Check the deferred foreign keys now: an index cannot be built on a
        # table with pending constraint-trigger events.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for _, definition in definitions:
            cursor.execute(definition)
    candidates = tracks_that_may_start_eligible(None)
    for start in range(0, len(candidates), 2000):
        eligibility_refresh(
            track_ids=candidates[start : start + 2000],
            source=Source.IMPORT,
            actor=None,
            note="new track: the rules make it eligible",
        )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")
    return created
