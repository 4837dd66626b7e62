"""The propagation doorbell and its beat sweeps.

* ``propagation_run`` (the doorbell, rung after every commit that records a
  change, at most every ``REFRAIN_PROPAGATION_DOORBELL_SECONDS`` per process,
  one runner at a time): fan out the outbox and wake the runner of every
  consumer with rows due.
* ``propagation_sweep`` (beat, every few seconds): the same, plus backfills
  and replays, and consumers failing for too long disabled. A lost message,
  a killed worker or an emptied broker cost only time.
* ``consumers_reconcile`` (beat, nightly): every consumer's delivered
  versions against the tracks' versions; what is behind and not queued is
  queued again and counted.
* ``delivery_attempts_purge`` (beat, daily): the attempt log keeps 30 days.
"""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.mail import mail_admins, send_mail
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.services import GROUP_POLICY_ADMINS
from catalog.models import Track
from config.doorbell import ring
from consent.db import try_session_lock
from consent.models import (
    CheckRun,
    Consumer,
    DeliveryAttempt,
    LedgerEntry,
    SyncState,
)
from consent.propagation.consumers import consumer_disable
from consent.propagation.outbox import propagation_fan_out, sync_upsert
from consent.tasks import deliver as deliver_task
from consent.tasks import propagate as propagate_task

logger = logging.getLogger("refrain.propagation")


def ring_due_consumers() -> list[int]:
    """Wake the runner of every active consumer, not held back, with rows
    due now; returns their ids."""
    now = timezone.now()
    rung = []
    active = Consumer.objects.filter(
        Q(hold_until__isnull=True) | Q(hold_until__lte=now),
        status=Consumer.Status.ACTIVE,
    ).values_list("pk", flat=True)
    for consumer_id in active:
        if SyncState.objects.filter(
            consumer_id=consumer_id, next_attempt_at__lte=now
        ).exists():
            ring(deliver_task, consumer_id)
            rung.append(consumer_id)
    return rung


# The doorbell's lock (any constant bigint, unique among Refrain's locks).
DOORBELL_LOCK = 0x5EF4A1_0001
BATCH = 5000  # outbox rows per fan-out transaction


def propagation_run(*, wake: bool = True) -> int:
    """The doorbell: fan out the recorded changes and wake the runner of every
    consumer with rows due (unless ``wake`` is off: the caller wakes them).

    One runner at a time: a doorbell rung while another runs returns at once
    (it holds no worker), and the runner fans out once more after letting go,
    so whatever such a doorbell stood for is taken. The runner takes batches
    while they come full (a backlog), handing on after
    ``REFRAIN_DELIVERY_RUN_SECONDS``; a steady stream is taken one batch per
    ring, so the deliveries rung meanwhile are not kept waiting. Every commit
    is followed by a ring (``ring_at_most_every`` rings at the end of its
    interval what it skipped). Returns the outbox rows taken."""
    limit = BATCH
    taken, hand_on = 0, False
    started = time.monotonic()
    with try_session_lock(DOORBELL_LOCK) as held:
        if not held:
            return 0
        while True:
            count = propagation_fan_out(limit=limit)
            taken += count
            if count and wake:
                ring_due_consumers()
            if count < limit:
                break
            if time.monotonic() - started > settings.REFRAIN_DELIVERY_RUN_SECONDS:
                hand_on = True
                break
    if hand_on:
        ring(propagate_task)
        return taken
    count = propagation_fan_out(limit=limit)
    if count and wake:
        ring_due_consumers()
    return taken + count


def fan_out_unlocked() -> int:
    """Fan out what is recorded, for at most ``REFRAIN_DELIVERY_RUN_SECONDS``,
    without the doorbell's lock: the sweep and the reconciliation are the
    safety net, so they never depend on the doorbell (``SKIP LOCKED`` makes
    this safe beside a runner). Returns the outbox rows taken."""
    taken = 0
    deadline = time.monotonic() + settings.REFRAIN_DELIVERY_RUN_SECONDS
    while time.monotonic() < deadline:
        count = propagation_fan_out(limit=BATCH)
        taken += count
        if count < BATCH:
            break
    return taken


def consumer_backfill_step(*, consumer_id: int, chunk: int = 5000) -> bool:
    """Queue the next ``chunk`` tracks of a backfill or replay (every track,
    or those changed or uploaded since its date); True while more remain."""
    with transaction.atomic():
        consumer = (
            Consumer.objects.select_for_update()
            .filter(pk=consumer_id, backfill_after__isnull=False)
            .first()
        )
        if consumer is None:
            return False
        tracks = Track.objects.filter(pk__gt=consumer.backfill_after).order_by("pk")
        if consumer.backfill_since is not None:
            since = consumer.backfill_since
            changed = LedgerEntry.objects.filter(created_at__gte=since).values(
                "track_id"
            )
            tracks = tracks.filter(Q(uploaded_at__gte=since) | Q(pk__in=changed))
        rows = list(tracks.values_list("pk", "consent_version")[:chunk])
        now = timezone.now()
        sync_upsert(
            consumer_ids=[consumer.pk],
            tracks={pk: (version, now) for pk, version in rows},
            now=now,
            force=True,
        )
        more = len(rows) == chunk
        consumer.backfill_after = rows[-1][0] if more else None
        if not more:
            consumer.backfill_since = None
        consumer.save(update_fields=["backfill_after", "backfill_since"])
    return more


def _disable_long_failing(now) -> list[int]:
    cutoff = now - timedelta(days=settings.REFRAIN_WEBHOOK_DISABLE_AFTER_DAYS)
    disabled = []
    for consumer in Consumer.objects.filter(
        status=Consumer.Status.ACTIVE, failing_since__lte=cutoff
    ):
        days = settings.REFRAIN_WEBHOOK_DISABLE_AFTER_DAYS
        consumer_disable(
            consumer=consumer,
            reason=f"Every delivery failed for {days} days: disabled.",
        )
        disabled.append(consumer.pk)
        transaction.on_commit(lambda c=consumer: _tell_policy_admins(c))
    return disabled


def _tell_policy_admins(consumer: Consumer) -> None:
    from accounts.models import User

    recipients = list(
        User.objects.filter(
            Q(groups__name=GROUP_POLICY_ADMINS) | Q(is_superuser=True), is_active=True
        )
        .values_list("email", flat=True)
        .distinct()
    )
    subject = f"Consumer “{consumer.name}” disabled after failing for days"
    body = (
        f"Every delivery to {consumer.name} ({consumer.url}) has failed since "
        f"{consumer.failing_since:%Y-%m-%d %H:%M} UTC, so Refrain stopped sending "
        "to it. Changes are still recorded for it: once the endpoint works, "
        "resume the consumer on its staff page (or `manage.py consumers resume`) "
        "and it receives everything it missed."
    )
    try:
        if recipients:
            send_mail(subject, body, None, recipients)
        else:
            mail_admins(subject, body)
    except Exception:  # noqa: BLE001 - the consumer is disabled either way
        logger.exception("could not e-mail about disabled consumer %s", consumer.pk)


def propagation_sweep(*, backfill_seconds: float = 3.0) -> dict:
    """Beat: fan out what is recorded, advance backfills for a few seconds,
    disable consumers failing for days, and wake every consumer with rows
    due. Safe to run twice or beside the doorbell."""
    now = timezone.now()
    disabled = _disable_long_failing(now)
    # Runners are woken once, at the end (not also after the fan-out: one
    # message per consumer per sweep).
    taken = fan_out_unlocked()
    deadline = time.monotonic() + backfill_seconds
    for consumer_id in Consumer.objects.filter(
        backfill_after__isnull=False
    ).values_list("pk", flat=True):
        while time.monotonic() < deadline:
            if not consumer_backfill_step(consumer_id=consumer_id):
                break
    rung = ring_due_consumers()
    return {"fanned_out": taken, "disabled": disabled, "rung": rung}


def _behind(consumer_id: int, after: int, limit: int) -> list[tuple[int, int, int]]:
    """(track id, version, id) of tracks after ``after`` that the consumer's
    sync row says are behind and not queued, or that it has no row for."""
    sync, tracks = SyncState._meta.db_table, Track._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT x.id, x.consent_version, x.behind FROM (SELECT t.id, "  # noqa: S608 - model tables; values are parameters
            "t.consent_version, (s.id IS NULL OR (s.delivered_version < "
            "t.consent_version AND s.next_attempt_at IS NULL AND s.dead_at IS NULL)) "
            f"AS behind FROM {tracks} t LEFT JOIN {sync} s ON s.track_id = t.id "
            "AND s.consumer_id = %s WHERE t.id > %s ORDER BY t.id LIMIT %s) x",
            [consumer_id, after, limit],
        )
        return cursor.fetchall()


def consumers_reconcile(
    *, chunk: int = 20000, triggered_by: str = "beat"
) -> dict[int, int]:
    """Nightly: for each consumer, every track whose delivered version is
    behind the track's and that is not queued (or has no sync row at all) is
    queued again; the count is kept on the consumer and returned per id, and
    the run is recorded as a ``CheckRun`` (kind ``consumers``).

    Walks the tracks by id in chunks (flat memory); the outbox is fanned out
    first, so changes merely on their way are not counted."""
    run = CheckRun.objects.create(
        kind=CheckRun.Kind.CONSUMERS, triggered_by=triggered_by[:254]
    )
    fan_out_unlocked()
    found: dict[int, int] = {}
    checked = 0
    for consumer in Consumer.objects.order_by("pk"):
        requeued, after = 0, 0
        limit = consumer.backfill_after  # a backfill in progress covers the rest
        while True:
            rows = _behind(consumer.pk, after, chunk)
            if not rows:
                break
            checked += len(rows)
            after = rows[-1][0]
            behind = [
                (pk, version)
                for pk, version, is_behind in rows
                if is_behind and (limit is None or pk <= limit)
            ]
            if behind:
                _requeue(consumer.pk, behind)
                requeued += len(behind)
        Consumer.objects.filter(pk=consumer.pk).update(
            reconciled_at=timezone.now(), reconciled_requeued=requeued
        )
        found[consumer.pk] = requeued
        if requeued:
            logger.warning(
                "reconciliation re-queued %s tracks for consumer %s",
                requeued,
                consumer.pk,
            )
    problems = sum(found.values())
    run.checked = checked
    run.problems = run.repaired = problems
    run.details = [
        f"{name}: {found[pk]} tracks behind and not queued, queued again"
        for pk, name in Consumer.objects.filter(pk__in=found).values_list("pk", "name")
        if found[pk]
    ]
    run.finished_at = timezone.now()
    run.save(
        update_fields=["checked", "problems", "repaired", "details", "finished_at"]
    )
    ring_due_consumers()
    return found


def _requeue(consumer_id: int, behind: list[tuple[int, int]]) -> None:
    now = timezone.now()
    with transaction.atomic():
        sync_upsert(
            consumer_ids=[consumer_id],
            tracks={pk: (version, now) for pk, version in behind},
            now=now,
            force=True,
        )


def delivery_attempts_purge(*, days: int = 30) -> int:
    """Delete logged attempts older than ``days``; returns how many."""
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = DeliveryAttempt.objects.filter(started_at__lt=cutoff).delete()
    return deleted
