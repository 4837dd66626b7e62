"""Consent's check tables: the nightly checks' results and the signed
anchors of the ledger.

Tables and constraints only; every write is in ``consent.services``.
"""

from django.db import models
from django.utils import timezone

__all__ = ["CheckRun", "LedgerAnchor"]


class CheckRun(models.Model):
    """The result of one run of a consistency check (``check_consent``,
    ``verify_ledger``, ``check_signals``, the consumers' reconciliation),
    kept for the audit view."""

    class Kind(models.TextChoices):
        CONSENT = "consent", "Stored consent against the rules"
        LEDGER = "ledger", "Ledger hash chains"
        CONSUMERS = "consumers", "Consumers' delivered versions against the tracks"
        SIGNALS = "signals", "Public signals and tagged audio against the ledger"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Who asked: "beat", "command" or a staff member's e-mail.
    triggered_by = models.CharField(max_length=254, blank=True)
    checked = models.PositiveIntegerField(default=0)
    problems = models.PositiveIntegerField(default=0)
    repaired = models.PositiveIntegerField(default=0)
    # The first differences found, in words (bounded).
    details = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["kind", "-started_at"], name="consent_checkrun_kind")
        ]

    def __str__(self) -> str:
        return f"{self.kind} check {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def ok(self) -> bool | None:
        """True when it finished with nothing wrong left (``None`` while it
        runs)."""
        if self.finished_at is None:
            return None
        return self.problems == self.repaired


class LedgerAnchor(models.Model):
    """A signed digest of every chain head of the ledger at one moment.

    ``root`` is the Merkle root (``consent.anchors``) over the head of every
    track's chain among the ledger rows with ``id <= ledger_through`` (rows
    that were all committed when the anchor was taken, and never change), so
    anyone can recompute it later from the ledger. ``signature`` is the
    site's Ed25519 signature of ``consent.anchors.anchor_statement``. The
    database refuses DELETE, TRUNCATE and any UPDATE but that of
    ``emailed_at`` (triggers created by migration).
    """

    created_at = models.DateTimeField(default=timezone.now)
    ledger_through = models.PositiveBigIntegerField()
    track_count = models.PositiveIntegerField()
    row_count = models.PositiveBigIntegerField()
    root = models.CharField(max_length=64)
    signature = models.CharField(max_length=100)
    key_id = models.CharField(max_length=64)
    # The outbox flag of the auditors' e-mail (set before it leaves).
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["id"],
                condition=models.Q(emailed_at__isnull=True),
                name="consent_anchor_unsent",
            )
        ]

    def __str__(self) -> str:
        return f"Anchor {self.pk} {self.root[:12]}"
