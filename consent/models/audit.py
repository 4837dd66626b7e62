"""The audit's precomputed figures: the side-by-side counts as of one moment,
and the ledger's changes per day, class and use.

Written only by ``consent.audit.audit_figures_refresh`` (a worker, every few
minutes): the staff and public transparency pages read these instead of
counting a million tracks per request, and say "as of" when.
"""

from django.db import models
from django.utils import timezone

from catalog.models import LicenseClass
from consent.uses import Use

__all__ = ["AuditDay", "AuditSnapshot"]


class AuditSnapshot(models.Model):
    """The audit's figures, all read from one database snapshot."""

    # When the figures were read (the "as of" the pages show).
    created_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    triggered_by = models.CharField(max_length=254, blank=True)
    # {"side_by_side": [{license_class, use, tracks, artists, <figure>: n}],
    #  "platform": [{license_class, use, eligible}], "platform_uses": [...]}
    figures = models.JSONField(default=dict)

    class Meta:
        indexes = [models.Index(fields=["-created_at"], name="consent_auditsnap_new")]

    def __str__(self) -> str:
        return f"audit figures {self.created_at:%Y-%m-%d %H:%M}"


class AuditDay(models.Model):
    """The ledger's changes on one day (UTC), for one licence class (each
    track's class today) and one use."""

    day = models.DateField()
    license_class = models.CharField(max_length=16, choices=LicenseClass.choices)
    use = models.CharField(max_length=32, choices=Use.choices)
    grants = models.PositiveIntegerField(default=0)
    denials = models.PositiveIntegerField(default=0)
    became_eligible = models.PositiveIntegerField(default=0)
    stopped_eligible = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "license_class", "use"],
                name="consent_auditday_uniq",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.license_class} {self.use}"
