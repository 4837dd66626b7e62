"""The change feed partners pull: every change of a track's eligibility, in
commit order, behind a cursor that never skips a change committed late.

Rows are appended by the fan-out (``consent.propagation.outbox``), in the
transaction that takes the outbox rows, under a lock held until that
transaction commits: sequence numbers are drawn in lock order and become
visible in the same order, so "after ``seq``" misses nothing. (A change's
own transaction cannot number it: a lower number could commit after a
higher one.) SQLite serialises its writers, which gives the same order.

Each row holds the track's consent version and eligibility per use as the
fan-out read them, so a row says what was true at that version; a track
changed twice before a fan-out gets one row with the later state.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from catalog.models import Track
from consent.db import id_condition, transaction_lock
from consent.models import ChangeFeedEntry, ChangeFeedState, TrackConsent
from consent.uses import USE_ORDER

FEED_LOCK = 0x5EF4A1_0003
FEED = ChangeFeedEntry._meta.db_table
CONSENTS = TrackConsent._meta.db_table
TRACKS = Track._meta.db_table
MAX_PAGE = 1000
CURSOR_RE = re.compile(r"^c([0-9]{1,19})$")


def eligible_bits_sql(use_column: str, eligible_column: str) -> str:
    """The sum that packs a track's rows into one number: bit ``i`` set when
    it is eligible for ``USE_ORDER[i]``."""
    whens = " ".join(
        f"WHEN '{use}' THEN {1 << index}" for index, use in enumerate(USE_ORDER)
    )
    return (
        f"SUM(CASE WHEN {eligible_column} THEN "
        f"(CASE {use_column} {whens} ELSE 0 END) ELSE 0 END)"
    )


def permitted(bits: int) -> dict[str, bool]:
    """A row's eligibility per use, from its packed bits."""
    return {use: bool(bits >> index & 1) for index, use in enumerate(USE_ORDER)}


def feed_append(*, track_ids: list[int], now: datetime) -> None:
    """Append one row per track with its current version and eligibility.
    Inside the fan-out's transaction; holds the feed lock until it commits."""
    if not track_ids:
        return
    transaction_lock(FEED_LOCK)
    condition, params = id_condition("t.id", sorted(track_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {FEED} (track_id, consent_version, eligible, created_at) "  # noqa: S608 - model tables, fixed fragments
            f"SELECT t.id, t.consent_version, "
            f"{eligible_bits_sql('c.use', 'c.eligible')}, %s "
            f"FROM {TRACKS} t JOIN {CONSENTS} c ON c.track_id = t.id "
            f"WHERE {condition} GROUP BY t.id, t.consent_version ORDER BY t.id",
            [now, *params],
        )


def feed_position() -> int:
    """The newest row's number (0 when the feed is empty)."""
    return ChangeFeedEntry.objects.aggregate(top=Max("seq"))["top"] or _pruned()


def _pruned() -> int:
    state = ChangeFeedState.objects.first()
    return state.pruned_through if state is not None else 0


def cursor_for(seq: int) -> str:
    return f"c{seq}"


class CursorInvalid(ValueError):
    pass


class CursorExpired(ValueError):
    pass


def cursor_parse(cursor: str | None) -> int:
    """The position a cursor stands for (None or "": the feed's beginning)."""
    if not cursor:
        return 0
    match = CURSOR_RE.match(cursor)
    if match is None:
        raise CursorInvalid(
            "This is not a cursor the change feed gave out: send next_cursor "
            "from a previous page, or no cursor to start at the beginning."
        )
    return int(match.group(1))


@dataclass(frozen=True)
class FeedPage:
    changes: list[dict]
    next_cursor: str
    has_more: bool
    as_of: datetime


def feed_page(*, after: int, limit: int) -> FeedPage:
    """Rows after position ``after``, oldest first. Raises ``CursorExpired``
    when rows after it have been pruned (re-sync from the export)."""
    as_of = timezone.now()
    pruned = _pruned()
    if after < pruned:
        raise CursorExpired(
            "This cursor is older than the change feed keeps "
            f"({settings.REFRAIN_FEED_KEEP_DAYS} days): download the export "
            "again (GET /api/v1/eligibility/export) and follow the changes from "
            "the cursor it gives."
        )
    rows = list(
        ChangeFeedEntry.objects.filter(seq__gt=after)
        .order_by("seq")
        .values_list("seq", "track_id", "consent_version", "eligible", "created_at")[
            : limit + 1
        ]
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    ids = {
        pk: (public_id, isrc)
        for pk, public_id, isrc in Track.objects.filter(
            pk__in={row[1] for row in rows}
        ).values_list("pk", "public_id", "isrc")
    }
    changes = []
    for seq, track_id, version, bits, created_at in rows:
        public_id, isrc = ids.get(track_id, (None, None))
        if public_id is None:
            continue  # the track was deleted since
        changes.append(
            {
                "cursor": cursor_for(seq),
                "id": public_id,
                "isrc": isrc,
                "consent_version": version,
                "permitted": permitted(bits),
                "changed_at": created_at,
            }
        )
    last = rows[-1][0] if rows else max(after, pruned)
    return FeedPage(
        changes=changes, next_cursor=cursor_for(last), has_more=has_more, as_of=as_of
    )


def feed_prune(*, now: datetime | None = None) -> int:
    """Delete rows older than ``REFRAIN_FEED_KEEP_DAYS``; remember how far."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.REFRAIN_FEED_KEEP_DAYS)
    with transaction.atomic():
        top = ChangeFeedEntry.objects.filter(created_at__lt=cutoff).aggregate(
            top=Max("seq")
        )["top"]
        if top is None:
            return 0
        state, _ = ChangeFeedState.objects.select_for_update().get_or_create(pk=1)
        deleted, _ = ChangeFeedEntry.objects.filter(seq__lte=top).delete()
        state.pruned_through = max(state.pruned_through, top)
        state.pruned_at = now
        state.save()
    return deleted
