"""Receipts: the one written with each artist's change, and the outbox that
e-mails them.

The receipt row is the outbox: ``emailed_at`` empty means not yet done. An
artist's unsent receipts go out together, in one e-mail, as the artist chose
(``ReceiptEmailPreference``): "each" (no row) once a burst is over (no new
receipt for ``REFRAIN_RECEIPT_BURST_MINUTES``, or the oldest waited
``REFRAIN_RECEIPT_BURST_MAX_MINUTES``), "daily" once
``REFRAIN_RECEIPT_DAILY_HOUR`` (UTC) has passed since the oldest, "none"
never (settled, ``email_skipped``). Beat's sweep sends what is due; with a
burst of 0 a doorbell after each commit sends at once. What the e-mail says
is ``consent.receipt_mail``.
"""

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import F, Max, Min, Q
from django.utils import timezone

from accounts.models import User
from config.doorbell import ring, ring_at_most_every
from consent.db import try_session_lock
from consent.models import LedgerEntry, Receipt, ReceiptEmailPreference, ReceiptEmails
from consent.policy import Policy, policy_current
from consent.receipt_mail import receipt_message
from consent.receipts import receipt_payload
from consent.services.writes import LockedTrack
from consent.tasks import send_pending_receipts as send_pending_receipts_task

logger = logging.getLogger("refrain.receipts")


def receipt_create(
    *,
    artist_id: int,
    entries: list[LedgerEntry],
    tracks: dict[int, LockedTrack],
    method: str,
    policy: Policy,
    now: datetime,
    extra: dict | None = None,
) -> Receipt:
    """Write the receipt of these ledger rows (all of one artist), inside the
    change's transaction; ``extra`` adds members to its payload."""
    receipt = Receipt(public_id=uuid.uuid4(), artist_id=artist_id, created_at=now)
    receipt.payload = receipt_payload(
        receipt=receipt,
        entries=entries,
        tracks=tracks,
        method=method,
        policy=policy,
        extra=extra,
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
    if receipts_doorbell_wanted():
        transaction.on_commit(ring_receipts_doorbell)
    return receipt


def receipts_doorbell_wanted() -> bool:
    """Whether a commit that wrote a receipt wakes the sender: only when a
    burst is over at once; otherwise nothing it wrote is due before one of
    beat's sweeps, so a message per commit would find nothing to send."""
    return settings.REFRAIN_RECEIPT_BURST_MINUTES <= 0


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


@dataclass(frozen=True)
class BurstCutoffs:
    """When an artist's unsent receipts are due, as of one moment."""

    quiet: datetime  # "each": no receipt since then, the burst is over
    cap: datetime  # "each": the oldest waited since then, send anyway
    daily: datetime  # "daily": the last daily sending time, at or before now


def burst_cutoffs(now: datetime) -> BurstCutoffs:
    daily = now.astimezone(UTC).replace(
        hour=settings.REFRAIN_RECEIPT_DAILY_HOUR, minute=0, second=0, microsecond=0
    )
    if daily > now:
        daily -= timedelta(days=1)
    return BurstCutoffs(
        quiet=now - timedelta(minutes=settings.REFRAIN_RECEIPT_BURST_MINUTES),
        cap=now - timedelta(minutes=settings.REFRAIN_RECEIPT_BURST_MAX_MINUTES),
        daily=daily,
    )


def burst_is_due(
    frequency: str, *, oldest: datetime, newest: datetime, cutoffs: BurstCutoffs
) -> bool:
    """Whether an artist's unsent receipts (the oldest and newest of them)
    are to be sent now: "each" once the burst is over (or has gone on too
    long), "daily" once the daily time has passed since the oldest, "none"
    always (settled without an e-mail)."""
    if frequency == ReceiptEmails.NONE:
        return True
    if frequency == ReceiptEmails.DAILY:
        return oldest < cutoffs.daily
    return newest <= cutoffs.quiet or oldest <= cutoffs.cap


def _due_artists(now: datetime, limit: int) -> list[int]:
    """Artists with unsent receipts that are due, longest waiting first: the
    condition of ``burst_is_due`` in one grouped query over the outbox."""
    cutoffs = burst_cutoffs(now)
    each = Q(frequency__isnull=True) | Q(frequency=ReceiptEmails.EACH)
    due = (
        Q(frequency=ReceiptEmails.NONE)
        | Q(frequency=ReceiptEmails.DAILY, oldest__lt=cutoffs.daily)
        | (each & (Q(newest__lte=cutoffs.quiet) | Q(oldest__lte=cutoffs.cap)))
    )
    return list(
        Receipt.objects.filter(emailed_at__isnull=True)
        .values("artist_id", frequency=F("artist__receipt_email_preference__frequency"))
        .annotate(oldest=Min("created_at"), newest=Max("created_at"))
        .filter(due)
        .order_by("oldest")
        .values_list("artist_id", flat=True)[:limit]
    )


def _send_until(deadline: float, limit: int) -> tuple[int, bool]:
    """Send the due bursts, longest waiting first, until none is left or the
    deadline passes; returns (e-mails sent, whether any may be left)."""
    now = timezone.now()
    batch = _due_artists(now, limit)
    sent = 0
    for artist_id in batch:
        try:
            sent += receipts_burst_send(artist_id=artist_id, now=now)
        except Exception:  # noqa: BLE001 - one artist's failure stops no other's
            # Nothing was marked (it rolled back): the next sweep tries again.
            logger.exception("could not e-mail the receipts of artist %s", artist_id)
        if time.monotonic() >= deadline:
            return sent, True
    return sent, len(batch) == limit


def receipts_send_pending(*, limit: int = 1000) -> int:
    """E-mail every artist whose receipts are due, one e-mail per artist for
    all their unsent receipts (see ``burst_is_due``); returns the e-mails.

    Safe to run concurrently and twice: ``receipts_burst_send`` claims the
    receipts under their row locks and marks them before the e-mail leaves.
    One sender at a time, so a burst of doorbells never takes every worker
    from the deliveries: a doorbell rung while another sends returns at
    once, and the sender looks again after letting go. A sender hands on
    (rings itself) after ``REFRAIN_RECEIPT_RUN_SECONDS``, behind whatever
    queued meanwhile.
    """
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


def _frequency_of(artist_id: int) -> str:
    return (
        ReceiptEmailPreference.objects.filter(artist_id=artist_id)
        .values_list("frequency", flat=True)
        .first()
        or ReceiptEmails.EACH
    )


def receipts_burst_send(*, artist_id: int, now: datetime | None = None) -> int:
    """Send one artist's unsent receipts in one e-mail if they are due (as
    the artist's choice is now); returns 1 when an e-mail was sent.

    At most once: the receipts are claimed under their row locks (``SKIP
    LOCKED``: a concurrent sender's are left to it), the e-mail is composed
    (a failure there leaves them unsent) and the receipts are marked in one
    transaction, which commits before the e-mail leaves; a send that fails
    is logged and not repeated. A choice of "none" marks them
    ``email_skipped`` and sends nothing. Idempotent.
    """
    now = now or timezone.now()
    with transaction.atomic():
        receipts = list(
            Receipt.objects.select_for_update(skip_locked=True)
            .filter(artist_id=artist_id, emailed_at__isnull=True)
            .order_by("created_at", "pk")
        )
        if not receipts:
            return 0
        frequency = _frequency_of(artist_id)
        if not burst_is_due(
            frequency,
            oldest=receipts[0].created_at,
            newest=receipts[-1].created_at,
            cutoffs=burst_cutoffs(now),
        ):
            return 0
        message = _claim(receipts, frequency=frequency)
    return _send(message, receipts)


def receipt_email_send(*, receipt_id: int) -> bool:
    """E-mail one receipt now, whatever the burst (as the artist chose: not
    when they chose none); idempotent (nothing when already done)."""
    with transaction.atomic():
        receipt = (
            Receipt.objects.select_for_update()
            .filter(pk=receipt_id, emailed_at__isnull=True)
            .first()
        )
        if receipt is None:
            return False
        message = _claim([receipt], frequency=_frequency_of(receipt.artist_id))
    return bool(_send(message, [receipt]))


def _claim(receipts: list[Receipt], *, frequency: str) -> EmailMessage | None:
    """Inside the caller's transaction, holding the receipts' row locks:
    compose their e-mail (none for an artist who chose none) and mark them."""
    skipped = frequency == ReceiptEmails.NONE
    message = None
    if not skipped:
        artist = User.objects.get(pk=receipts[0].artist_id)
        message = receipt_message(artist=artist, receipts=receipts, frequency=frequency)
    Receipt.objects.filter(pk__in=[receipt.pk for receipt in receipts]).update(
        emailed_at=timezone.now(), email_skipped=skipped
    )
    return message


def _send(message: EmailMessage | None, receipts: list[Receipt]) -> int:
    """Send a claimed e-mail (after its claim committed); returns 1 when it
    was handed to the mail server, and logs a failure (never retried)."""
    if message is None:
        return 0
    try:
        message.send()
    except Exception:  # noqa: BLE001 - at most once: logged, not retried
        logger.exception(
            "could not e-mail receipts %s", [str(r.public_id) for r in receipts]
        )
        return 0
    return 1


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
    *, artist: User, request_id: str, method: str, extra: dict | None = None
) -> Receipt | None:
    """One receipt covering every ledger row written under ``request_id``
    (``extra`` adds members to its payload).

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
            extra=extra,
        )
