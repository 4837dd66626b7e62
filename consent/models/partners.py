"""The partner API's tables: partners and their keys, what they looked up, what
they acknowledged, the change feed they pull, and the signed exports.

Tables and constraints only; every write is in ``consent.partners``.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from catalog.models import Track
from consent.models.propagation import Consumer
from consent.uses import Use

__all__ = [
    "Partner",
    "ApiKey",
    "PartnerLookup",
    "PartnerLookupDay",
    "Acknowledgement",
    "ChangeFeedEntry",
    "ChangeFeedState",
    "ExportSnapshot",
]

DEFAULT_ACK_DAYS = 30


class Partner(models.Model):
    """An AI company that checks tracks, pulls changes and acknowledges them.

    It may also receive webhooks (``consumer``). It must acknowledge every
    withdrawal (a use of a track no longer permitted) within ``ack_days``.
    """

    name = models.CharField(max_length=100)
    consumer = models.OneToOneField(
        Consumer,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="partner",
    )
    ack_days = models.PositiveSmallIntegerField(default=DEFAULT_ACK_DAYS)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name"], name="consent_partner_name"),
            models.CheckConstraint(
                condition=models.Q(ack_days__gte=1, ack_days__lte=365),
                name="consent_partner_ack_days",
            ),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    """A key for the partner API (``partner``) or the catalogue feed
    (``catalog``), sent as ``Authorization: Bearer rfk_…``. Only its SHA-256
    is stored; ``prefix`` (its first 12 characters) is shown and names it."""

    class Scope(models.TextChoices):
        PARTNER = "partner", "Partner (check, export, changes, acknowledgements)"
        CATALOG = "catalog", "Catalogue feed (import)"

    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=8, choices=Scope.choices)
    partner = models.ForeignKey(
        Partner,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="keys",
    )
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64)
    rate_limit = models.PositiveIntegerField(
        help_text="Requests per minute this key may make."
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key_hash"], name="consent_apikey_hash"),
            models.UniqueConstraint(fields=["prefix"], name="consent_apikey_prefix"),
            models.CheckConstraint(
                condition=(
                    models.Q(scope="partner", partner__isnull=False)
                    | models.Q(scope="catalog", partner__isnull=True)
                ),
                name="consent_apikey_scope_partner",
            ),
            models.CheckConstraint(
                condition=models.Q(rate_limit__gte=1),
                name="consent_apikey_rate_limit",
            ),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class PartnerLookup(models.Model):
    """One eligibility check as it was answered, written in one INSERT by the
    request; a worker folds it into ``PartnerLookupDay`` and deletes it."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    use = models.CharField(max_length=32, choices=Use.choices)
    created_at = models.DateTimeField(default=timezone.now)
    track_ids = models.JSONField(default=list)
    # One character per track id: "1" eligible, "0" not.
    answers = models.TextField()

    def __str__(self) -> str:
        return f"{self.partner_id} checked {len(self.track_ids)} for {self.use}"


class PartnerLookupDay(models.Model):
    """How often a partner checked a track on one day, and the last answer."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    track = models.ForeignKey(
        Track, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    checks = models.PositiveIntegerField(default=0)
    last_use = models.CharField(max_length=32, choices=Use.choices)
    last_eligible = models.BooleanField()
    last_checked_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["track", "partner", "day"], name="consent_lookupday_uniq"
            )
        ]
        indexes = [models.Index(fields=["day"], name="consent_lookupday_day")]

    def __str__(self) -> str:
        return f"{self.partner_id} {self.track_id} {self.day}: {self.checks}"


class Acknowledgement(models.Model):
    """A partner saying it acted on a track's consent: applied the decision
    of ``consent_version`` or removed the track from a dataset."""

    class Status(models.TextChoices):
        APPLIED = "applied", "Applied"
        REMOVED = "removed", "Removed"

    partner = models.ForeignKey(
        Partner, on_delete=models.PROTECT, related_name="acknowledgements"
    )
    track = models.ForeignKey(
        Track, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    use = models.CharField(max_length=32, choices=Use.choices)
    consent_version = models.PositiveIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices)
    dataset = models.CharField(max_length=200)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["track", "use", "partner", "consent_version"],
                name="consent_ack_track",
            ),
            models.Index(fields=["partner", "-created_at"], name="consent_ack_partner"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.partner_id} {self.status} {self.track_id} v{self.consent_version}"
        )


class ChangeFeedEntry(models.Model):
    """The change feed: one row per track whose consent changed, in commit
    order. Written by the fan-out under a lock held to its commit, so a row
    with a higher ``seq`` never becomes visible before a lower one."""

    seq = models.BigAutoField(primary_key=True)
    track_id = models.BigIntegerField()  # no foreign key, as the outbox
    consent_version = models.IntegerField()
    # Bit i set: the track is eligible for USE_ORDER[i].
    eligible = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["created_at"], name="consent_feed_created")]

    def __str__(self) -> str:
        return f"#{self.seq} track {self.track_id} v{self.consent_version}"


class ChangeFeedState(models.Model):
    """One row: how far the feed has been pruned (older cursors are gone)."""

    pruned_through = models.BigIntegerField(default=0)
    pruned_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"pruned through {self.pruned_through}"


class ExportSnapshot(models.Model):
    """Every track eligible for one use, as one file, at one feed position."""

    class Format(models.TextChoices):
        JSONL = "jsonl", "JSON Lines"
        CSV = "csv", "CSV"

    class Status(models.TextChoices):
        BUILDING = "building", "Building"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    use = models.CharField(max_length=32, choices=Use.choices)
    format = models.CharField(max_length=8, choices=Format.choices)
    feed_seq = models.BigIntegerField()
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.BUILDING
    )
    as_of = models.DateTimeField(null=True, blank=True)
    path = models.CharField(max_length=300, blank=True)
    rows = models.PositiveBigIntegerField(default=0)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    signature = models.CharField(max_length=100, blank=True)
    key_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["use", "format", "feed_seq"], name="consent_export_state"
            )
        ]
        indexes = [
            models.Index(
                fields=["use", "format", "status", "-feed_seq"],
                name="consent_export_latest",
            )
        ]

    def __str__(self) -> str:
        return f"{self.use} {self.format} @{self.feed_seq} ({self.status})"
