"""Consent's core tables: decisions, defaults, the policy, stored eligibility,
the ledger, receipts, background jobs and check results.

Tables and constraints only; every write is in ``consent.services``.
"""

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from catalog.models import LicenseClass, Track
from consent.uses import Use

__all__ = [
    "Decision",
    "State",
    "Rule",
    "Source",
    "PolicyVersion",
    "PolicyRule",
    "PolicyNotice",
    "ArtistDefault",
    "TrackConsent",
    "LedgerEntry",
    "Receipt",
    "BulkJob",
    "IdempotencyRecord",
]


class Decision(models.TextChoices):
    GRANTED = "granted", "Granted"
    DENIED = "denied", "Denied"


class State(models.TextChoices):
    """What an artist sets for one use: a decision, or back to their default."""

    GRANTED = "granted", "Granted"
    DENIED = "denied", "Denied"
    DEFAULT = "default", "Default"


class Rule(models.TextChoices):
    OPT_IN = "opt_in", "Opt-in: eligible only with the artist's yes"
    OPT_OUT = "opt_out", "Opt-out: eligible unless the artist says no"
    PROHIBITED = "prohibited", "Prohibited: never eligible"


class Source(models.TextChoices):
    WEB = "web", "Web"
    BULK = "bulk", "Bulk change"
    API = "api", "API"
    ADMIN = "admin", "Admin"
    POLICY = "policy", "Policy change"
    IMPORT = "import", "Catalogue import"
    UPLOAD = "upload", "Upload"


class PolicyVersion(models.Model):
    number = models.PositiveIntegerField(unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    reason = models.TextField()
    # Progress of the background re-evaluation: tracks up to this id are done;
    # ``applied_at`` is set when every track is.
    applied_through_track_id = models.BigIntegerField(default=0)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"Policy v{self.number}"


class PolicyRule(models.Model):
    version = models.ForeignKey(
        PolicyVersion, on_delete=models.PROTECT, related_name="rules"
    )
    license_class = models.CharField(max_length=16, choices=LicenseClass.choices)
    use = models.CharField(max_length=32, choices=Use.choices)
    rule = models.CharField(max_length=16, choices=Rule.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["version", "license_class", "use"],
                name="consent_rule_version_class_use_uniq",
            )
        ]

    def __str__(self) -> str:
        return f"v{self.version_id} {self.license_class} {self.use}: {self.rule}"


class PolicyNotice(models.Model):
    """One summary e-mail per artist per policy version (sent at most once)."""

    version = models.ForeignKey(PolicyVersion, on_delete=models.CASCADE)
    artist = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["version", "artist"], name="consent_notice_version_artist_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"v{self.version_id} → {self.artist_id}"


class ArtistDefault(models.Model):
    """The artist's answer for a use on tracks they have not decided on.

    No row means ``denied``.
    """

    artist = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    use = models.CharField(max_length=32, choices=Use.choices)
    decision = models.CharField(max_length=8, choices=Decision.choices)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["artist", "use"], name="consent_default_artist_use_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.artist_id} {self.use}: {self.decision}"


class TrackConsent(models.Model):
    """One track's decision for one use and the eligibility derived from it.

    Every track has one row per use. ``decision`` is empty while the artist
    has not decided (the default applies). ``eligible`` is stored, so lists
    and counts need no rule evaluation; ``consent.services`` keeps it equal to
    what the rules give. ``artist`` and ``license_class`` are copies of the
    track's, for per-artist filters and per-class audit counts.
    """

    # No single-column index: the unique (track, use) constraint leads with it.
    track = models.ForeignKey(
        Track, on_delete=models.CASCADE, related_name="consents", db_index=False
    )
    use = models.CharField(max_length=32, choices=Use.choices)
    decision = models.CharField(max_length=8, choices=Decision.choices, blank=True)
    eligible = models.BooleanField(default=False)
    artist = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    license_class = models.CharField(max_length=16, choices=LicenseClass.choices)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["track", "use"], name="consent_trackconsent_track_use_uniq"
            )
        ]
        indexes = [
            models.Index(
                fields=["artist", "use", "decision", "track"],
                name="consent_tc_artist_decision",
            ),
            models.Index(
                fields=["artist", "use", "eligible", "track"],
                name="consent_tc_artist_eligible",
            ),
            models.Index(
                fields=["license_class", "use", "eligible"],
                name="consent_tc_class_eligible",
            ),
            # The list's version (``selectors.list_state``): the latest change.
            models.Index(
                fields=["artist", "-updated_at"], name="consent_tc_artist_changed"
            ),
            # Only the rows that permit a use, in track order: the public
            # signals list the tracks that permit anything
            # (``selectors.permitted_tracks``) without reading the others.
            models.Index(
                fields=["track", "use"],
                condition=models.Q(eligible=True),
                name="consent_tc_eligible_track",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.track_id} {self.use}: {self.decision or 'default'}"


class LedgerEntry(models.Model):
    """One change of one track's consent for one use. Append-only.

    ``entry_hash`` is SHA-256 over the canonical encoding of this row and the
    previous row's hash for the same track (``consent.ledger``). The database
    refuses UPDATE and DELETE (triggers created by migration).
    """

    # No single-column index: the unique (track, version) constraint leads with it.
    track = models.ForeignKey(
        Track, on_delete=models.PROTECT, related_name="ledger", db_index=False
    )
    consent_version = models.PositiveIntegerField()
    use = models.CharField(max_length=32, choices=Use.choices)
    old_state = models.CharField(max_length=8, choices=State.choices)
    new_state = models.CharField(max_length=8, choices=State.choices)
    old_eligible = models.BooleanField()
    new_eligible = models.BooleanField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    source = models.CharField(max_length=8, choices=Source.choices)
    created_at = models.DateTimeField(default=timezone.now)
    policy_version = models.PositiveIntegerField()
    request_id = models.CharField(max_length=64, blank=True)
    note = models.CharField(max_length=200, blank=True)
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["track", "consent_version"],
                name="consent_ledger_track_version_uniq",
            )
        ]
        indexes = [
            models.Index(fields=["created_at"], name="consent_ledger_created"),
            # A bulk change's or policy run's rows, for its one receipt or
            # summary (most rows of single changes have no request id).
            models.Index(
                fields=["request_id"],
                condition=~models.Q(request_id=""),
                name="consent_ledger_request",
            ),
            # Withdrawals (a use no longer permitted), which partners must
            # acknowledge (``consent.partners.acknowledgements``).
            models.Index(
                fields=["created_at", "track"],
                condition=models.Q(old_eligible=True, new_eligible=False),
                name="consent_ledger_withdrawn",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.track_id} v{self.consent_version} {self.use}"


class Receipt(models.Model):
    """A consent receipt for one change or one bulk change by an artist."""

    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    # No single-column index: the (artist, -created_at) index leads with it.
    artist = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(default=timezone.now)
    payload = models.JSONField()
    tracks = models.ManyToManyField(Track, related_name="receipts")
    # The outbox: empty until the sender is done with the receipt, then when
    # it was, e-mailed or (``email_skipped``) settled without an e-mail
    # because the artist chose none. A database default, so the PostgreSQL
    # switch function's INSERT needs no change.
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_skipped = models.BooleanField(default=False, db_default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["public_id"], name="consent_receipt_public_id_uniq"
            )
        ]
        indexes = [
            models.Index(
                fields=["artist", "-created_at"], name="consent_receipt_artist"
            ),
            # The outbox: receipts not yet e-mailed (the sweep and the digest
            # read only these, however many receipts have been sent).
            models.Index(
                fields=["id"],
                condition=models.Q(emailed_at__isnull=True),
                name="consent_receipt_unsent",
            ),
        ]

    def __str__(self) -> str:
        return f"Receipt {self.public_id}"

    def get_absolute_url(self) -> str:
        return reverse("receipt", kwargs={"public_id": self.public_id})


class BulkJob(models.Model):
    """A bulk change of one use on many of an artist's tracks, with progress."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting to start"
        RUNNING = "running", "In progress"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    artist = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    use = models.CharField(max_length=32, choices=Use.choices)
    state = models.CharField(max_length=8, choices=State.choices)
    # Who asked (the ledger's actor for every chunk, whichever run writes it).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    # Either explicit track ids or the list's filters ("all N that match").
    track_ids = models.JSONField(default=list, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    locked = models.PositiveIntegerField(default=0)
    # Tracks with ids up to this one are done (resume point after a crash).
    cursor = models.BigIntegerField(default=0)
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.QUEUED
    )
    # Whoever runs the job holds it until this time and extends it with each
    # chunk; a job whose lease ran out (its worker died) or that never
    # started is resumed by the beat sweep (``bulk_jobs_resume``).
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    request_id = models.CharField(max_length=64)
    receipt = models.ForeignKey(
        Receipt, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["public_id"], name="consent_bulkjob_public_id_uniq"
            )
        ]
        indexes = [
            # The sweep reads only unfinished jobs.
            models.Index(
                fields=["created_at"],
                condition=models.Q(status__in=["queued", "running"]),
                name="consent_bulkjob_unfinished",
            ),
        ]

    def __str__(self) -> str:
        return f"Bulk {self.use}={self.state} ({self.status})"

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, self.processed * 100 // self.total)

    @property
    def phase(self) -> str:
        """What the artist is told: ``done`` or ``failed`` as stored;
        ``running`` only while a runner holds a live lease; otherwise
        ``waiting`` (never started, or its runner stopped: the beat sweep
        hands it on)."""
        if self.status in (self.Status.DONE, self.Status.FAILED):
            return self.status
        if (
            self.status == self.Status.RUNNING
            and self.lease_expires_at is not None
            and self.lease_expires_at > timezone.now()
        ):
            return "running"
        return "waiting"


class IdempotencyRecord(models.Model):
    """The first answer to an API write sent with an ``Idempotency-Key``.

    A retry with the same key by the same user gets this answer back instead
    of running again; the same key with another request (``fingerprint``
    differs) is refused. The row is inserted in the same transaction as the
    write it records, so the unique (user, key) constraint makes concurrent
    requests with one key wait for the first and then replay it
    (``consent.idempotency``). Rows older than a day may be purged or reused.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    key = models.CharField(max_length=255)
    # sha256 of method, path and (canonical JSON) body.
    fingerprint = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "key"], name="consent_idempotency_user_key_uniq"
            )
        ]
        indexes = [
            models.Index(fields=["created_at"], name="consent_idempotency_created"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.key}: {self.status}"
