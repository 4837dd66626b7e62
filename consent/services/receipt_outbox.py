"""Receipts: the one written with each artist's change, and the outbox that
e-mails them (the receipt row is the outbox: ``emailed_at`` empty means not
yet sent; a doorbell wakes a worker after commit, a beat sweep finds what a
lost doorbell missed)."""

import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import User
from config.doorbell import ring, ring_at_most_every
from consent.db import try_session_lock
from consent.models import LedgerEntry, Receipt
from consent.policy import Policy, policy_current
from consent.receipts import receipt_payload
from consent.services.writes import LockedTrack
from consent.tasks import send_pending_receipts as send_pending_receipts_task


def receipt_create(
    *,
    artist_id: int,
    entries: list[LedgerEntry],
    tracks: dict[int, LockedTrack],
    method: str,
    policy: Policy,
    now: datetime,
) -> Receipt:
    receipt = Receipt(public_id=uuid.uuid4(), artist_id=artist_id, created_at=now)
    receipt.payload = receipt_payload(
        receipt=receipt, entries=entries, tracks=tracks, method=method, policy=policy
    )
    receipt.save()
    track_ids = sorted({entry.track_id for entry in entries})
    through = Receipt.tracks.through
    if connection.vendor == "postgresql" and len(track_ids) > 1:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {through._meta.db_table} (receipt_id, track_id) "
                "SELECT %s, unnest(%s::bigint[])",
                [receipt.pk, track_ids],
            )
    else:
        through.objects.bulk_create(
            [through(receipt_id=receipt.pk, track_id=pk) for pk in track_ids],
            batch_size=5000,
        )
    if settings.REFRAIN_RECEIPT_EMAILS == "immediate":
        transaction.on_commit(ring_receipts_doorbell)
    return receipt


def ring_receipts_doorbell() -> None:
    """Wake a worker to e-mail pending receipts, at most once per
    ``REFRAIN_RECEIPT_DOORBELL_SECONDS`` per process.

    The receipt row is the outbox: one message sends every pending receipt,
    so a burst of switches costs one publish, not one each, and a message
    that is skipped or lost only delays the e-mail until the beat sweep.
    """
    ring_at_most_every(
        settings.REFRAIN_RECEIPT_DOORBELL_SECONDS, send_pending_receipts_task
    )


# The sender's lock (any constant bigint, unique among Refrain's locks).
RECEIPTS_LOCK = 0x5EF4A1_0002


def _send_until(deadline: float, limit: int) -> tuple[int, bool]:
    """Send pending receipts, oldest first, until none is left or the
    deadline passes; returns (sent, whether any may be left)."""
    sent = 0
    while True:
        pending = Receipt.objects.filter(emailed_at__isnull=True).order_by("pk")
        batch = list(pending.values_list("pk", flat=True)[:limit])
        for receipt_id in batch:
            sent += receipt_email_send(receipt_id=receipt_id)
            if time.monotonic() >= deadline:
                return sent, True
        if len(batch) < limit:
            return sent, False


def receipts_send_pending(*, limit: int = 1000) -> int:
    """E-mail every receipt not yet sent, one e-mail each (immediate mode).

    Safe to run concurrently and twice: ``receipt_email_send`` claims each
    receipt under its row lock and marks it before the e-mail leaves. One
    sender at a time, so a burst of doorbells never takes every worker from
    the deliveries: a doorbell rung while another sends returns at once, and
    the sender looks again after letting go. A sender hands on (rings itself)
    after ``REFRAIN_RECEIPT_RUN_SECONDS``, behind whatever queued meanwhile.
    """
    if settings.REFRAIN_RECEIPT_EMAILS != "immediate":
        return 0
    deadline = time.monotonic() + settings.REFRAIN_RECEIPT_RUN_SECONDS
    with try_session_lock(RECEIPTS_LOCK) as held:
        if not held:
            return 0
        sent, more = _send_until(deadline, limit)
    if not more:
        extra, more = _send_until(deadline, limit)
        sent += extra
    if more:
        ring(send_pending_receipts_task)
    return sent


@dataclass(frozen=True, slots=True)
class _EntryView:
    """The fields of a ledger row a receipt needs (no model instance)."""

    track_id: int
    consent_version: int
    use: str
    new_state: str
    new_eligible: bool
    entry_hash: str
    request_id: str


def receipt_for_request(
    *, artist: User, request_id: str, method: str
) -> Receipt | None:
    """One receipt covering every ledger row written under ``request_id``.

    Idempotent: returns the existing receipt when there is one.
    """
    existing = Receipt.objects.filter(
        artist=artist, payload__request_id=request_id
    ).first()
    if existing:
        return existing
    with transaction.atomic():
        entries, tracks = [], {}
        for row in (
            LedgerEntry.objects.filter(request_id=request_id, track__artist=artist)
            .order_by("track_id", "consent_version")
            .values_list(
                "track_id",
                "consent_version",
                "use",
                "new_state",
                "new_eligible",
                "entry_hash",
                "request_id",
                "track__public_id",
                "track__license_class",
                "track__isrc",
            )
            .iterator(chunk_size=5000)
        ):
            entries.append(_EntryView(*row[:7]))
            tracks[row[0]] = LockedTrack(
                row[0], row[7], artist.pk, row[8], 0, "", row[9]
            )
        if not entries:
            return None
        return receipt_create(
            artist_id=artist.pk,
            entries=entries,
            tracks=tracks,
            method=method,
            policy=policy_current(),
            now=timezone.now(),
        )


def receipt_email_send(*, receipt_id: int) -> bool:
    """E-mail one receipt; idempotent (sends nothing when already sent)."""
    with transaction.atomic():
        receipt = (
            Receipt.objects.select_for_update()
            .select_related("artist")
            .filter(pk=receipt_id, emailed_at__isnull=True)
            .first()
        )
        if receipt is None:
            return False
        receipt.emailed_at = timezone.now()
        receipt.save(update_fields=["emailed_at"])
    body = render_to_string(
        "consent/email/receipt.txt",
        {
            "receipts": [receipt],
            "user": receipt.artist,
            "site": settings.REFRAIN_SITE_URL.rstrip("/"),
        },
    )
    message = EmailMessage(
        subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}Your consent receipt",
        body=body,
        to=[receipt.artist.email],
    )
    message.attach(
        f"refrain-receipt-{receipt.public_id}.json",
        _json_bytes(receipt.payload),
        "application/json",
    )
    message.send()
    return True


def receipts_email_digest() -> int:
    """Send each artist one e-mail listing their receipts not yet e-mailed.

    Safe to run twice at once: receipts are claimed under row locks
    (``SKIP LOCKED``) and marked before the e-mail leaves.
    """
    sent = 0
    artist_ids = (
        Receipt.objects.filter(emailed_at__isnull=True)
        .values_list("artist_id", flat=True)
        .distinct()
    )
    for artist_id in list(artist_ids):
        with transaction.atomic():
            receipts = list(
                Receipt.objects.select_for_update(skip_locked=True)
                .filter(artist_id=artist_id, emailed_at__isnull=True)
                .order_by("created_at")
            )
            if not receipts:
                continue
            Receipt.objects.filter(pk__in=[r.pk for r in receipts]).update(
                emailed_at=timezone.now()
            )
        artist = User.objects.get(pk=artist_id)
        EmailMessage(
            subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}"
            f"Your consent receipts ({len(receipts)})",
            body=render_to_string(
                "consent/email/receipt.txt",
                {
                    "receipts": receipts,
                    "user": artist,
                    "site": settings.REFRAIN_SITE_URL.rstrip("/"),
                },
            ),
            to=[artist.email],
        ).send()
        sent += 1
    return sent


def _json_bytes(payload: dict) -> bytes:
    return json.dumps(payload, indent=2, ensure_ascii=False).encode()
