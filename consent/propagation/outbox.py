"""Recording a change for propagation, and fanning it out to every consumer.

``propagation_record`` runs inside the transaction of the change (the Python
write path; the PostgreSQL switch function inserts the same row itself): one
small row per track changed, never one per consumer, so the toggle's cost does
not grow with the consumers. ``propagation_fan_out`` runs in a worker: it
claims outbox rows with ``SKIP LOCKED`` (SQLite's writers are serialised by
its ``IMMEDIATE`` transactions, the equivalent), raises each consumer's
``desired_version`` for those tracks, makes the rows due, deletes them and
appends the tracks to the partners' change feed, all in one transaction;
after it commits, the changed tracks that have audio are handed to the worker
that writes their tagged copies (``consent.tag_audio``).
"""

from collections.abc import Mapping
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from catalog.models import Track
from config.doorbell import ring, ring_at_most_every
from consent.db import id_condition
from consent.models import Consumer, PropagationChange, SyncState
from consent.partners.feed import feed_append
from consent.tasks import propagate as propagate_task
from consent.tasks import tag_audio as tag_audio_task

SYNC = SyncState._meta.db_table
OUTBOX = PropagationChange._meta.db_table
TRACKS = Track._meta.db_table
# Tracks per message to the worker that writes tagged copies (each copy is a
# file copied and tagged: a message stays a few seconds of work).
TAG_BATCH = 200


def propagation_record(*, versions: Mapping[int, int], now: datetime) -> None:
    """Record that these tracks (id -> new consent version) changed.

    Call inside the transaction that made the change: the row commits with it
    or not at all. Idempotent for the fan-out (a version recorded twice is
    delivered once)."""
    if not versions:
        return
    transaction.on_commit(propagation_ring)
    items = sorted(versions.items())
    if connection.vendor == "postgresql" and len(items) > 1:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {OUTBOX} (track_id, consent_version, created_at) "  # noqa: S608 - model table; values are parameters
                "SELECT v.id, v.version, %s "
                "FROM unnest(%s::bigint[], %s::int[]) AS v(id, version)",
                [now, [pk for pk, _ in items], [version for _, version in items]],
            )
        return
    PropagationChange.objects.bulk_create(
        [
            PropagationChange(track_id=pk, consent_version=version, created_at=now)
            for pk, version in items
        ],
        batch_size=2000,
    )


def propagation_ring() -> None:
    """After a commit that recorded a change: ring the doorbell (throttled
    per process; ``propagation_run`` keeps looking to cover the gap)."""
    ring_at_most_every(settings.REFRAIN_PROPAGATION_DOORBELL_SECONDS, propagate_task)


def _greatest() -> str:
    return "GREATEST" if connection.vendor == "postgresql" else "max"


def sync_upsert_sql(*, force: bool) -> str:
    """The upsert of sync rows from ``v(consumer_id, track_id, version, since)``.

    A new row is due at once. An existing row takes the higher desired
    version; it becomes due (keeping a retry's later time, reviving a dead
    letter) only when that version is ahead of everything it holds, or always
    with ``force`` (a replay re-sends what was delivered already).
    """
    greatest = _greatest()
    ahead = (
        "TRUE"
        if force
        else f"excluded.desired_version > {greatest}("
        f"{SYNC}.desired_version, {SYNC}.delivered_version)"
    )
    due = (
        f"CASE WHEN NOT ({ahead}) THEN {SYNC}.next_attempt_at "
        f"WHEN {SYNC}.dead_at IS NOT NULL THEN excluded.next_attempt_at "
        f"ELSE COALESCE({SYNC}.next_attempt_at, excluded.next_attempt_at) END"
    )
    return (
        f"INSERT INTO {SYNC} (consumer_id, track_id, desired_version, "  # noqa: S608 - model tables and fixed fragments; values are parameters
        "delivered_version, pending_since, next_attempt_at, attempts, last_error, "
        "lease_token) "
        "SELECT v.consumer_id, v.track_id, v.version, -1, v.since, %s, 0, '', '' "
        f"FROM v JOIN {TRACKS} t ON t.id = v.track_id "
        "WHERE TRUE ORDER BY v.track_id, v.consumer_id "
        "ON CONFLICT (track_id, consumer_id) DO UPDATE SET "
        f"desired_version = {greatest}({SYNC}.desired_version, "
        "excluded.desired_version), "
        f"pending_since = CASE WHEN {ahead} THEN COALESCE({SYNC}.pending_since, "
        f"excluded.pending_since) ELSE {SYNC}.pending_since END, "
        f"next_attempt_at = {due}, "
        f"attempts = CASE WHEN ({ahead}) AND {SYNC}.dead_at IS NOT NULL THEN 0 "
        f"ELSE {SYNC}.attempts END, "
        f"dead_at = CASE WHEN {ahead} THEN NULL ELSE {SYNC}.dead_at END"
    )


def sync_upsert(
    *,
    consumer_ids: list[int],
    tracks: Mapping[int, tuple[int, datetime]],
    now: datetime,
    force: bool = False,
) -> None:
    """Raise every consumer's desired version of these tracks (id ->
    (version, changed at)); rows of tracks that no longer exist are skipped.
    Rows are written in (track, consumer) order, so two fan-outs never wait
    on each other in a cycle."""
    if not consumer_ids or not tracks:
        return
    items = sorted(tracks.items())
    sql = sync_upsert_sql(force=force)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "WITH v AS (SELECT c.id AS consumer_id, x.track_id, x.version, "  # noqa: S608 - built from fixed fragments
                "x.since FROM unnest(%s::bigint[], %s::int[], %s::timestamptz[]) "
                "AS x(track_id, version, since) CROSS JOIN unnest(%s::bigint[]) "
                "AS c(id)) " + sql,
                [
                    [pk for pk, _ in items],
                    [version for _, (version, _) in items],
                    [since for _, (_, since) in items],
                    list(consumer_ids),
                    now,
                ],
            )
            return
        for start in range(0, len(items), 200):
            chunk = items[start : start + 200]
            values = ", ".join(["(%s, %s, %s, %s)"] * (len(chunk) * len(consumer_ids)))
            params: list = []
            for pk, (version, since) in chunk:
                for consumer_id in consumer_ids:
                    params += [consumer_id, pk, version, since]
            cursor.execute(
                f"WITH v(consumer_id, track_id, version, since) AS (VALUES {values}) "
                + sql,
                [*params, now],
            )


def propagation_fan_out(*, limit: int = 5000) -> int:
    """Turn up to ``limit`` outbox rows into due sync rows, one transaction.

    Safe to run concurrently (rows are claimed with ``SKIP LOCKED``) and
    twice (a row is deleted in the transaction that fans it out). Every
    consumer gets the change, whatever its state: a paused or disabled one
    catches up when it is active again. Returns the number of rows taken.
    """
    with transaction.atomic():
        rows = list(
            PropagationChange.objects.select_for_update(skip_locked=True)
            .order_by("id")
            .values_list("id", "track_id", "consent_version", "created_at")[:limit]
        )
        if not rows:
            return 0
        tracks: dict[int, tuple[int, datetime]] = {}
        for _, track_id, version, created_at in rows:
            held = tracks.get(track_id)
            if held is None:
                tracks[track_id] = (version, created_at)
            else:
                tracks[track_id] = (max(held[0], version), min(held[1], created_at))
        consumer_ids = sorted(Consumer.objects.values_list("pk", flat=True))
        now = timezone.now()
        sync_upsert(consumer_ids=consumer_ids, tracks=tracks, now=now)
        PropagationChange.objects.filter(id__in=[row[0] for row in rows]).delete()
        with_audio = tracks_with_audio(list(tracks))
        if with_audio:
            transaction.on_commit(lambda: tagged_audio_ring(with_audio))
        # Last: the feed's lock is held from here to the commit.
        feed_append(track_ids=list(tracks), now=now)
    return len(rows)


def tracks_with_audio(track_ids: list[int]) -> list[int]:
    """Those of these tracks that have an audio file, by id."""
    condition, params = id_condition("id", sorted(track_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {TRACKS} WHERE {condition} AND audio_file <> '' "  # noqa: S608 - model table, fixed fragments; ids are parameters
            "ORDER BY id",
            params,
        )
        return [pk for (pk,) in cursor.fetchall()]


def tagged_audio_ring(track_ids: list[int]) -> None:
    """After a fan-out commits: ring the worker that writes the tagged copies
    of these tracks' audio, ``TAG_BATCH`` tracks a message. A lost message
    costs latency only: a download that finds no copy rings again."""
    for start in range(0, len(track_ids), TAG_BATCH):
        ring(tag_audio_task, track_ids[start : start + TAG_BATCH])


def propagation_backlog() -> int:
    """Outbox rows not fanned out yet."""
    return PropagationChange.objects.count()
