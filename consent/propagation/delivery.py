"""Delivering to one consumer: claim due sync rows, send the tracks' current
state, record the answer (ARCHITECTURE.md, "The write path" 5-6).

* One runner per consumer at a time (``Consumer.delivering_until`` is its
  lease): a slow consumer holds one worker, never every worker.
* A claim is committed before the request: rows get a lease token and their
  ``next_attempt_at`` moves to the lease's end, so a runner that dies only
  delays them.
* On a 2xx, ``delivered_version`` only moves forward (``GREATEST``); a row
  whose track changed meanwhile stays due. Rapid changes merge: a request
  carries the state at the time it is read.
* On a failure, each row waits per ``REFRAIN_WEBHOOK_RETRY_SCHEDULE`` (after
  Standard Webhooks', with jitter) and is dead-lettered when it runs out; the
  consumer is held back as well (at most ``REFRAIN_WEBHOOK_PROBE_SECONDS``,
  or longer for a ``Retry-After``); a 410 disables it at once.
"""

import logging
import random
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from config.doorbell import ring
from consent.models import Consumer, DeliveryAttempt, SyncState
from consent.propagation import webhooks
from consent.propagation.payloads import (
    TrackState,
    message_id,
    state_body,
    track_states,
)
from consent.propagation.registry import registry_apply
from consent.tasks import deliver as deliver_task

SYNC = SyncState._meta.db_table

logger = logging.getLogger("refrain.propagation")

LAG_MS_MAX = 2**31 - 1  # DeliveryAttempt.lag_ms is a 32-bit integer


@dataclass(frozen=True)
class Claim:
    token: str
    track_ids: list[int]
    oldest_change: datetime | None


@dataclass(frozen=True)
class Sent:
    ok: bool
    status: int | None
    error: str
    retry_after: float | None
    duration_ms: int
    message_id: str = ""


def _lease() -> timedelta:
    return timedelta(seconds=settings.REFRAIN_DELIVERY_LEASE_SECONDS)


def retry_delay(failures: int) -> float | None:
    """Seconds to wait after the ``failures``-th failure in a row, with
    jitter; ``None`` once the schedule is used up (dead letter)."""
    schedule = settings.REFRAIN_WEBHOOK_RETRY_SCHEDULE
    if failures > len(schedule):
        return None
    base = float(schedule[failures - 1])
    return base * random.uniform(0.9, 1.1)  # noqa: S311 - jitter, not a secret


def consumer_take_turn(*, consumer_id: int, now: datetime) -> bool:
    """Become the one runner of an active consumer that is not held back."""
    return bool(
        Consumer.objects.filter(
            Q(delivering_until__isnull=True) | Q(delivering_until__lte=now),
            Q(hold_until__isnull=True) | Q(hold_until__lte=now),
            pk=consumer_id,
            status=Consumer.Status.ACTIVE,
        ).update(delivering_until=now + _lease())
    )


def consumer_end_turn(*, consumer_id: int) -> None:
    Consumer.objects.filter(pk=consumer_id).update(delivering_until=None)


def consumer_has_due(*, consumer_id: int, now: datetime | None = None) -> bool:
    return SyncState.objects.filter(
        consumer_id=consumer_id, next_attempt_at__lte=now or timezone.now()
    ).exists()


def sync_claim(*, consumer_id: int, limit: int, now: datetime) -> Claim | None:
    """Lease up to ``limit`` due rows of the consumer (committed on return)."""
    with transaction.atomic():
        rows = list(
            SyncState.objects.select_for_update(skip_locked=True)
            .filter(consumer_id=consumer_id, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("pk", "track_id", "pending_since")[:limit]
        )
        if not rows:
            return None
        token = secrets.token_hex(8)
        lease_end = now + _lease()
        SyncState.objects.filter(pk__in=[row[0] for row in rows]).update(
            lease_token=token, lease_expires_at=lease_end, next_attempt_at=lease_end
        )
    pending = [row[2] for row in rows if row[2] is not None]
    return Claim(token, [row[1] for row in rows], min(pending) if pending else None)


def _send(consumer: Consumer, states: list[TrackState]) -> Sent:
    if consumer.kind == Consumer.Kind.REGISTRY:
        started = time.monotonic()
        registry_apply(states=states)
        return Sent(True, None, "", None, int((time.monotonic() - started) * 1000))
    body = state_body(states)
    return webhook_send(consumer=consumer, body=body)


def signing_secrets(consumer: Consumer, now: datetime) -> list[str]:
    found = [consumer.secret]
    if consumer.previous_secret and (
        consumer.previous_secret_expires_at is None
        or consumer.previous_secret_expires_at > now
    ):
        found.append(consumer.previous_secret)
    return found


def webhook_send(*, consumer: Consumer, body: str) -> Sent:
    """One signed POST of ``body`` (its ``webhook-id`` derived from it)."""
    now = timezone.now()
    msg_id = message_id(consumer_id=consumer.pk, body=body)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Refrain-Webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": webhooks.signature_header(
            secrets_=signing_secrets(consumer, now),
            message_id=msg_id,
            at=now,
            body=body,
        ),
    }
    answer = webhooks.post(url=consumer.url, body=body.encode(), headers=headers)
    ok = answer.status is not None and 200 <= answer.status < 300
    return Sent(
        ok, answer.status, answer.error, answer.retry_after, answer.duration_ms, msg_id
    )


def _delivered_forward(consumer_id: int, sent: dict[int, int]) -> None:
    """Raise each row's delivered version to what was sent, forward only
    (whoever holds the row now): one UPDATE joined to the sent versions."""
    items = sorted(sent.items())
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {SYNC} s SET delivered_version = "  # noqa: S608 - model table; values are parameters
                "GREATEST(s.delivered_version, v.version) "
                "FROM unnest(%s::bigint[], %s::int[]) AS v(track_id, version) "
                "WHERE s.consumer_id = %s AND s.track_id = v.track_id",
                [[pk for pk, _ in items], [v for _, v in items], consumer_id],
            )
            return
        for start in range(0, len(items), 400):
            chunk = items[start : start + 400]
            values = ", ".join(["(%s, %s)"] * len(chunk))
            cursor.execute(
                f"WITH v(track_id, version) AS (VALUES {values}) "  # noqa: S608 - model table, placeholders; values are parameters
                f"UPDATE {SYNC} SET delivered_version = "
                f"max({SYNC}.delivered_version, v.version) FROM v "
                f"WHERE {SYNC}.consumer_id = %s AND {SYNC}.track_id = v.track_id",
                [*[x for pair in chunk for x in pair], consumer_id],
            )


def _record_success(consumer: Consumer, claim: Claim, states: list[TrackState]):
    now = timezone.now()
    sent = {state.track_id: state.consent_version for state in states}
    mine = SyncState.objects.filter(consumer=consumer, track_id__in=claim.track_ids)
    # Locked in track order first, the order the fan-out writes in: the two
    # never wait on each other in a cycle.
    list(mine.select_for_update().order_by("track_id").values_list("pk"))
    if sent:
        _delivered_forward(consumer.pk, sent)
    # Due again only if its track changed meanwhile. A claimed track that
    # was not sent (no consent rows to tell of) is left to the nightly
    # reconciliation rather than claimed again at once, which would spin.
    behind = Q(desired_version__gt=F("delivered_version"), track_id__in=list(sent))
    due = Case(When(behind, then=Value(now)), default=None) if sent else None
    mine.filter(lease_token=claim.token).update(
        next_attempt_at=due,
        pending_since=due,
        attempts=0,
        last_error="",
        lease_token="",
        lease_expires_at=None,
        dead_at=None,
    )
    Consumer.objects.filter(pk=consumer.pk).update(
        consecutive_failures=0, failing_since=None, hold_until=None, last_success_at=now
    )


def _record_failure(consumer: Consumer, claim: Claim, sent: Sent) -> None:
    now = timezone.now()
    rows = (
        SyncState.objects.select_for_update()
        .filter(
            consumer=consumer, track_id__in=claim.track_ids, lease_token=claim.token
        )
        .order_by("track_id")
        .values_list("pk", "attempts")
    )
    # The rows failed together: one UPDATE per attempt count (usually one),
    # each with its own draw of the schedule's jitter.
    by_attempts: dict[int, list[int]] = {}
    for pk, attempts in rows:
        by_attempts.setdefault(attempts + 1, []).append(pk)
    for attempts, pks in sorted(by_attempts.items()):
        delay = retry_delay(attempts)
        if delay is None:
            due = {"dead_at": now, "next_attempt_at": None}
        else:
            wait = max(delay, sent.retry_after or 0.0)
            due = {"next_attempt_at": now + timedelta(seconds=wait)}
        SyncState.objects.filter(pk__in=pks).update(
            attempts=attempts,
            last_error=sent.error[:300],
            lease_token="",
            lease_expires_at=None,
            **due,
        )
    failures = consumer.consecutive_failures + 1
    hold = min(
        retry_delay(min(failures, len(settings.REFRAIN_WEBHOOK_RETRY_SCHEDULE))) or 0,
        settings.REFRAIN_WEBHOOK_PROBE_SECONDS,
    )
    hold = max(hold, sent.retry_after or 0.0)
    changes = {
        "consecutive_failures": failures,
        "failing_since": consumer.failing_since or now,
        "hold_until": now + timedelta(seconds=hold),
    }
    if sent.status == 410:
        changes.update(
            status=Consumer.Status.DISABLED,
            status_reason="The endpoint answered 410 Gone: disabled at once.",
        )
    Consumer.objects.filter(pk=consumer.pk).update(**changes)


def _log_attempt(consumer, claim, sent, started_at, outcome, lag_ms=None) -> None:
    DeliveryAttempt.objects.create(
        consumer=consumer,
        started_at=started_at,
        duration_ms=sent.duration_ms,
        status_code=sent.status,
        outcome=outcome,
        error=sent.error[:300],
        tracks=len(claim.track_ids),
        message_id=sent.message_id,
        lag_ms=lag_ms,
    )


def claim_deliver(*, consumer: Consumer, claim: Claim) -> bool:
    """Send the claimed tracks' current state and record the answer (one
    transaction after the request). True on success."""
    started_at = timezone.now()
    states = track_states(track_ids=claim.track_ids, uses=consumer.uses)
    try:
        sent = _send(consumer, states) if states else Sent(True, None, "", None, 0)
    except Exception as error:  # noqa: BLE001 - any failure is retried on schedule
        logger.exception("delivery to consumer %s failed", consumer.pk)
        sent = Sent(False, None, f"{type(error).__name__}: {error}", None, 0)
    with transaction.atomic():
        if sent.ok:
            _record_success(consumer, claim, states)
            lag = None
            if claim.oldest_change is not None:
                waited = (timezone.now() - claim.oldest_change).total_seconds()
                # Capped to the column's range: a consumer paused for weeks
                # must not fail its own success record (24.8 days in ms).
                lag = min(max(0, int(waited * 1000)), LAG_MS_MAX)
            _log_attempt(consumer, claim, sent, started_at, "delivered", lag)
        else:
            _record_failure(consumer, claim, sent)
            outcome = "gone" if sent.status == 410 else "failed"
            _log_attempt(consumer, claim, sent, started_at, outcome)
    return sent.ok


def consumer_deliver(*, consumer_id: int) -> int:
    """Deliver what is due to one consumer; returns the tracks delivered.

    Idempotent and safe to run concurrently: a second runner finds the turn
    taken and returns at once. The runner takes batches while they come full
    (a backlog) for at most ``REFRAIN_DELIVERY_RUN_SECONDS``, and stops at the
    first batch that is not: a steady stream is taken a batch per ring, so
    the other consumers' runners (and the doorbell) are not kept waiting for
    a worker. Rows due after it let go of its turn (made due while it held
    it, or left by the time limit) ring it again, behind what queued
    meanwhile, so none is stranded.
    """
    delivered = 0
    deadline = time.monotonic() + settings.REFRAIN_DELIVERY_RUN_SECONDS
    batch = settings.REFRAIN_DELIVERY_BATCH_SIZE
    if not consumer_take_turn(consumer_id=consumer_id, now=timezone.now()):
        return delivered
    try:
        while time.monotonic() < deadline:
            consumer = Consumer.objects.filter(pk=consumer_id).first()
            if consumer is None or consumer.status != Consumer.Status.ACTIVE:
                return delivered
            claim = sync_claim(consumer_id=consumer_id, limit=batch, now=timezone.now())
            if claim is None:
                break
            if not claim_deliver(consumer=consumer, claim=claim):
                return delivered
            delivered += len(claim.track_ids)
            if len(claim.track_ids) < batch:
                break
            Consumer.objects.filter(pk=consumer_id).update(
                delivering_until=timezone.now() + _lease()
            )
    finally:
        consumer_end_turn(consumer_id=consumer_id)
    if consumer_has_due(consumer_id=consumer_id):
        ring(deliver_task, consumer_id)
    return delivered
