"""What an artist chose about the e-mails Refrain sends them.

Tables and constraints only; the write is ``consent.services.receipt_emails_set``.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

__all__ = ["ReceiptEmails", "ReceiptEmailPreference"]


class ReceiptEmails(models.TextChoices):
    """How an artist's consent receipts are e-mailed (they are kept, and
    downloadable from the track pages, whatever the choice)."""

    EACH = "each", "After each change"
    DAILY = "daily", "Once a day"
    NONE = "none", "Never"


class ReceiptEmailPreference(models.Model):
    """The artist's choice of receipt e-mails. No row means ``each``."""

    artist = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="receipt_email_preference",
    )
    frequency = models.CharField(
        max_length=8, choices=ReceiptEmails.choices, default=ReceiptEmails.EACH
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(frequency__in=ReceiptEmails.values),
                name="consent_receiptemails_frequency_known",
            )
        ]

    def __str__(self) -> str:
        return f"{self.artist_id}: {self.frequency}"
