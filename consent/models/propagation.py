"""Propagation's tables: who hears of consent changes, what each has been told.

A consent change writes one ``PropagationChange`` row (the outbox) in its own
transaction. A worker fans those out into one ``SyncState`` per (consumer,
track) and delivers the track's current state; ``DeliveryAttempt`` logs every
request, and ``RegistryEntry`` is the built-in consumer's record of what the
platform's own AI pipelines may use (ARCHITECTURE.md, "The write path" 4-7).

Tables and constraints only; every write is in ``consent.propagation``.
"""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from catalog.models import Track
from consent.uses import Use

__all__ = [
    "Consumer",
    "SyncState",
    "PropagationChange",
    "DeliveryAttempt",
    "RegistryEntry",
]


class Consumer(models.Model):
    """A downstream system that must hear of every consent change."""

    class Kind(models.TextChoices):
        REGISTRY = "registry", "Training-data registry (built in)"
        WEBHOOK = "webhook", "Partner webhook"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        DISABLED = "disabled", "Disabled"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    url = models.URLField(max_length=500, blank=True)
    # The use slugs it receives, in ``Use`` order.
    uses = models.JSONField(default=list)
    # Standard Webhooks secrets ("whsec_" + base64); the previous one signs
    # too until ``previous_secret_expires_at`` (rotation's grace period).
    secret = models.CharField(max_length=100, blank=True)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    # Why it is paused or disabled, in words for staff.
    status_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # One runner at a time delivers to a consumer (so a slow one holds one
    # worker, never all of them): the runner's lease.
    delivering_until = models.DateTimeField(null=True, blank=True)
    # No request before this time (a Retry-After, or the back-off of a
    # consumer that keeps failing).
    hold_until = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    # A backfill or replay in progress walks the tracks by id: every track
    # with ``id > backfill_after`` is still to be queued (``None``: none in
    # progress); with ``backfill_since``, only tracks changed since then.
    backfill_after = models.BigIntegerField(null=True, blank=True)
    backfill_since = models.DateTimeField(null=True, blank=True)
    # When the last nightly reconciliation ran and what it re-queued.
    reconciled_at = models.DateTimeField(null=True, blank=True)
    reconciled_requeued = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name"], name="consent_consumer_name"),
            models.CheckConstraint(
                condition=models.Q(kind="registry") | ~models.Q(url=""),
                name="consent_consumer_webhook_has_url",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("consumers:detail", kwargs={"consumer_id": self.pk})


class SyncState(models.Model):
    """What one consumer has been told of one track.

    ``desired_version`` is the track's ``consent_version`` the consumer must
    reach; ``delivered_version`` the highest it acknowledged with a 2xx (-1:
    never), which only ever moves forward. The row is due while
    ``next_attempt_at`` is set and has passed; a runner that claims it sets
    ``lease_token`` and pushes ``next_attempt_at`` to the lease's end, so a
    runner that dies only delays it.
    """

    consumer = models.ForeignKey(
        Consumer, on_delete=models.CASCADE, related_name="sync_states"
    )
    # Indexed by the unique constraint, which leads with the track.
    track = models.ForeignKey(
        Track, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    desired_version = models.IntegerField(default=0)
    delivered_version = models.IntegerField(default=-1)
    # When the oldest change not yet delivered was committed.
    pending_since = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    lease_token = models.CharField(max_length=32, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Dead-lettered: every retry failed; a new change or a replay revives it.
    dead_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["track", "consumer"], name="consent_sync_track_consumer"
            )
        ]
        indexes = [
            models.Index(
                fields=["consumer", "next_attempt_at"],
                condition=models.Q(next_attempt_at__isnull=False),
                name="consent_sync_due",
            ),
            models.Index(
                fields=["consumer", "dead_at"],
                condition=models.Q(dead_at__isnull=False),
                name="consent_sync_dead",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.consumer_id}/{self.track_id}: "
            f"{self.delivered_version} of {self.desired_version}"
        )


class PropagationChange(models.Model):
    """The outbox: one row per track changed by a committed transaction.

    Written in the same transaction as the change (the PostgreSQL switch
    function writes it too); a worker turns it into ``SyncState`` rows and
    deletes it, so every row present is still to be fanned out, and one
    committed late is found whenever it commits (no "id greater than").
    """

    id = models.BigAutoField(primary_key=True)
    # No foreign key: the write path pays for no extra lookup, and a row of a
    # deleted track is dropped when it is fanned out.
    track_id = models.BigIntegerField()
    consent_version = models.IntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"track {self.track_id} v{self.consent_version}"


class DeliveryAttempt(models.Model):
    """One request to a consumer (or one write to the registry), kept 30 days."""

    class Outcome(models.TextChoices):
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        GONE = "gone", "Gone (410): consumer disabled"
        TEST = "test", "Test event"

    consumer = models.ForeignKey(
        Consumer, on_delete=models.CASCADE, related_name="attempts"
    )
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error = models.CharField(max_length=300, blank=True)
    tracks = models.PositiveIntegerField(default=0)
    message_id = models.CharField(max_length=64, blank=True)
    # Delivered: time from the oldest change in the request to its 2xx.
    lag_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["consumer", "-started_at"], name="consent_attempt_consumer"
            ),
            models.Index(fields=["started_at"], name="consent_attempt_started"),
        ]

    def __str__(self) -> str:
        return f"{self.consumer_id} {self.started_at:%Y-%m-%d %H:%M:%S} {self.outcome}"


class RegistryEntry(models.Model):
    """The training-data registry: per (track, use), the eligibility the
    platform's own AI pipelines were last told, and its consent version.

    Written only by the registry consumer's deliveries, and only forward."""

    track = models.ForeignKey(
        Track, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    use = models.CharField(max_length=32, choices=Use.choices)
    eligible = models.BooleanField()
    consent_version = models.IntegerField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["track", "use"], name="consent_registry_track_use"
            )
        ]

    def __str__(self) -> str:
        return f"{self.track_id} {self.use}: {self.eligible} (v{self.consent_version})"
