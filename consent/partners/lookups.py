"""The look-up log: which partner checked which track, per day, and the last
answer it was given. Kept ``REFRAIN_LOOKUP_KEEP_DAYS`` (13 months)."""

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from catalog.models import Track
from consent.models import PartnerLookup, PartnerLookupDay

DAYS = PartnerLookupDay._meta.db_table
TRACKS = Track._meta.db_table
BATCH = 50  # logged calls folded per transaction (each up to 10,000 tracks)


def lookups_fold(*, limit: int = 10_000) -> int:
    """Fold logged calls into ``PartnerLookupDay``; returns calls folded.

    Claims rows with ``SKIP LOCKED`` (two workers never fold one twice) and
    deletes them in the same transaction as the upsert."""
    folded = 0
    while folded < limit:
        with transaction.atomic():
            calls = list(
                PartnerLookup.objects.select_for_update(skip_locked=True).order_by(
                    "id"
                )[:BATCH]
            )
            if not calls:
                break
            _upsert(_aggregate(calls))
            PartnerLookup.objects.filter(id__in=[call.pk for call in calls]).delete()
        folded += len(calls)
    return folded


def _aggregate(calls: Iterable[PartnerLookup]) -> dict[tuple, list]:
    """(track, partner, day) -> [checks, last use, last eligible, last at]."""
    totals: dict[tuple, list] = {}
    for call in calls:
        day = timezone.localdate(call.created_at)
        for track_id, answer in zip(call.track_ids, call.answers, strict=True):
            key = (track_id, call.partner_id, day)
            held = totals.get(key)
            if held is None:
                totals[key] = [1, call.use, answer == "1", call.created_at]
            else:
                held[0] += 1
                if call.created_at >= held[3]:
                    held[1:] = [call.use, answer == "1", call.created_at]
    return totals


COLUMNS = "track_id, partner_id, day, checks, last_use, last_eligible, last_checked_at"


def _upsert(totals: dict[tuple, list]) -> None:
    items = sorted(totals.items())  # a stable order: no deadlock between folds
    newer = f"excluded.last_checked_at >= {DAYS}.last_checked_at"
    upsert = (
        f"JOIN {TRACKS} t ON t.id = v.track_id WHERE TRUE "  # a deleted track: skipped
        "ON CONFLICT (track_id, partner_id, day) DO UPDATE SET "
        f"checks = {DAYS}.checks + excluded.checks, "
        f"last_use = CASE WHEN {newer} THEN excluded.last_use "
        f"ELSE {DAYS}.last_use END, "
        f"last_eligible = CASE WHEN {newer} THEN excluded.last_eligible "
        f"ELSE {DAYS}.last_eligible END, "
        f"last_checked_at = CASE WHEN {newer} THEN excluded.last_checked_at "
        f"ELSE {DAYS}.last_checked_at END"
    )
    rows = [(*key, *value) for key, value in items]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Seven arrays, one statement per 10,000 rows (a VALUES list of
            # 7,000 placeholders costs the driver 3x more, measured).
            for start in range(0, len(rows), 10_000):
                chunk = rows[start : start + 10_000]
                cursor.execute(
                    f"INSERT INTO {DAYS} ({COLUMNS}) SELECT v.* FROM unnest("  # noqa: S608 - model tables, fixed fragments
                    "%s::bigint[], %s::bigint[], %s::date[], %s::int[], %s::text[], "
                    f"%s::bool[], %s::timestamptz[]) AS v({COLUMNS}) " + upsert,
                    [list(column) for column in zip(*chunk, strict=True)],
                )
            return
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"WITH v({COLUMNS}) AS (VALUES {values}) "  # noqa: S608
                f"INSERT INTO {DAYS} ({COLUMNS}) SELECT v.* FROM v " + upsert,
                [value for row in chunk for value in row],
            )


def lookups_prune(*, now: datetime | None = None) -> int:
    cutoff: date = timezone.localdate(now or timezone.now()) - timedelta(
        days=settings.REFRAIN_LOOKUP_KEEP_DAYS
    )
    deleted, _ = PartnerLookupDay.objects.filter(day__lt=cutoff).delete()
    return deleted
