"""The artist's choice of receipt e-mails (``/settings/consent/``)."""

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from consent.models import ReceiptEmailPreference, ReceiptEmails
from consent.services.writes import ConsentError


def receipt_emails_set(*, artist: User, frequency: str) -> bool:
    """Save how the artist's receipts are e-mailed: ``each`` (one e-mail per
    burst of changes), ``daily`` or ``none``; returns whether it changed.

    Refuses anything else (``ConsentError``, nothing written). Receipts not
    e-mailed yet follow the new choice at the next sweep; receipts are kept
    whatever the choice. One transaction; the artist's row is locked, so two
    saves at once end with the later one.
    """
    if frequency not in ReceiptEmails.values:
        raise ConsentError(
            "Choose how your receipts are e-mailed: after each change, once a "
            "day, or never."
        )
    with transaction.atomic():
        current = (
            ReceiptEmailPreference.objects.select_for_update()
            .filter(artist=artist)
            .values_list("frequency", flat=True)
            .first()
        ) or ReceiptEmails.EACH
        if current == frequency:
            return False
        ReceiptEmailPreference.objects.update_or_create(
            artist=artist,
            defaults={"frequency": frequency, "updated_at": timezone.now()},
        )
    return True
