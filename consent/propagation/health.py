"""How each consumer is doing, for the staff pages and ``manage.py consumers``.

Selectors only: nothing here writes. The list costs the same few queries
whatever the number of consumers (one grouped query per table).
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min
from django.utils import timezone

from consent.models import Consumer, DeliveryAttempt, SyncState
from consent.uses import USES

WINDOW = timedelta(hours=1)
FAILED_OUTCOMES = (DeliveryAttempt.Outcome.FAILED, DeliveryAttempt.Outcome.GONE)
ATTEMPTS_SHOWN = 50
DEAD_SHOWN = 50


@dataclass(frozen=True)
class ConsumerHealth:
    consumer: Consumer
    # Tracks queued for it (sent soon, being sent, or waiting for a retry).
    backlog: int
    # When the oldest change it has not acknowledged was committed.
    oldest_undelivered: datetime | None
    failures_last_hour: int
    dead_letters: int

    @property
    def last_success_at(self) -> datetime | None:
        return self.consumer.last_success_at

    @property
    def use_names(self) -> list[str]:
        return [USES[use].name for use in self.consumer.uses if use in USES]


@dataclass(frozen=True)
class Lag:
    """Delivery lag over the last hour, in milliseconds: from the commit of
    the oldest change in a request to the consumer's 2xx for it."""

    deliveries: int
    p50_ms: int | None
    p95_ms: int | None

    @property
    def p50_words(self) -> str:
        return duration_words(self.p50_ms)

    @property
    def p95_words(self) -> str:
        return duration_words(self.p95_ms)


def duration_words(ms: int | None) -> str:
    """``850 ms``, ``1.2 s``, ``95 s``: milliseconds below a second."""
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    return f"{seconds:.1f} s" if seconds < 10 else f"{round(seconds)} s"


def _grouped(consumer_ids: list[int], **condition) -> dict[int, dict]:
    # Each condition matches a partial index (due rows, dead rows), so the
    # figures never read the rows that are up to date.
    return {
        row["consumer_id"]: row
        for row in SyncState.objects.filter(consumer_id__in=consumer_ids, **condition)
        .values("consumer_id")
        .annotate(n=Count("pk"), oldest=Min("pending_since"))
    }


def _figures(consumer_ids: list[int], now: datetime) -> tuple[dict, dict]:
    """{consumer id: {backlog, dead, oldest}} and {consumer id: failures}.

    A row not yet delivered is either queued (``next_attempt_at`` set, a
    claimed row included) or dead-lettered, so the oldest undelivered change
    is the earlier of the two groups' oldest."""
    queued = _grouped(consumer_ids, next_attempt_at__isnull=False)
    dead = _grouped(consumer_ids, dead_at__isnull=False)
    sync = {}
    for pk in consumer_ids:
        a, b = queued.get(pk, {}), dead.get(pk, {})
        times = [t for t in (a.get("oldest"), b.get("oldest")) if t is not None]
        sync[pk] = {
            "backlog": a.get("n", 0),
            "dead": b.get("n", 0),
            "oldest": min(times) if times else None,
        }
    failures = dict(
        DeliveryAttempt.objects.filter(
            consumer_id__in=consumer_ids,
            started_at__gte=now - WINDOW,
            outcome__in=FAILED_OUTCOMES,
        )
        .values("consumer_id")
        .annotate(n=Count("pk"))
        .values_list("consumer_id", "n")
    )
    return sync, failures


def consumers_health(*, now: datetime | None = None) -> list[ConsumerHealth]:
    """Every consumer with its figures: the built-in registry first, then
    partners by name."""
    now = now or timezone.now()
    consumers = list(Consumer.objects.order_by("kind", "name"))
    consumers.sort(key=lambda c: (c.kind != Consumer.Kind.REGISTRY, c.name.lower()))
    sync, failures = _figures([c.pk for c in consumers], now)
    return [_health(consumer, sync, failures) for consumer in consumers]


def consumer_health(
    *, consumer: Consumer, now: datetime | None = None
) -> ConsumerHealth:
    sync, failures = _figures([consumer.pk], now or timezone.now())
    return _health(consumer, sync, failures)


def _health(consumer: Consumer, sync: dict, failures: dict) -> ConsumerHealth:
    row = sync.get(consumer.pk, {})
    return ConsumerHealth(
        consumer=consumer,
        backlog=row.get("backlog", 0),
        oldest_undelivered=row.get("oldest"),
        failures_last_hour=failures.get(consumer.pk, 0),
        dead_letters=row.get("dead", 0),
    )


def percentile(values: list[int], fraction: float) -> int | None:
    """Nearest-rank percentile of sorted ``values`` (None when empty)."""
    if not values:
        return None
    rank = max(1, math.ceil(fraction * len(values)))
    return values[rank - 1]


def consumer_lag(*, consumer: Consumer, now: datetime | None = None) -> Lag:
    now = now or timezone.now()
    lags = sorted(
        DeliveryAttempt.objects.filter(
            consumer=consumer,
            outcome=DeliveryAttempt.Outcome.DELIVERED,
            started_at__gte=now - WINDOW,
            lag_ms__isnull=False,
        ).values_list("lag_ms", flat=True)
    )
    return Lag(len(lags), percentile(lags, 0.50), percentile(lags, 0.95))


def consumer_attempts(*, consumer: Consumer, limit: int = ATTEMPTS_SHOWN) -> list:
    """The latest attempts, newest first."""
    return list(
        DeliveryAttempt.objects.filter(consumer=consumer).order_by(
            "-started_at", "-pk"
        )[:limit]
    )


def consumer_dead_letters(*, consumer: Consumer, limit: int = DEAD_SHOWN) -> list:
    """Dead-lettered tracks, the earliest first, with their track."""
    return list(
        SyncState.objects.filter(consumer=consumer, dead_at__isnull=False)
        .select_related("track")
        .order_by("dead_at", "pk")[:limit]
    )
