"""Ledger anchors: take one (sign a digest of every chain head), e-mail it
to the auditors, and check past anchors against the ledger as it is now.

An anchor covers the ledger rows with ``id <= ledger_through``. On
PostgreSQL a transaction could hold a lower id than one already committed,
so ``ledger_through`` is read under a brief SHARE lock of the ledger: it
waits for every open transaction that wrote ledger rows to end (new writes
queue behind it for that long, at most ``ANCHOR_LOCK_TIMEOUT``), so every
row up to it is committed and every later row gets a higher id. SQLite
commits one writer at a time, so its highest id is already such a bound.
The digest itself is then computed without any lock.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import GROUP_AUDITORS
from config.doorbell import ring_after_commit
from consent import signing
from consent.anchors import anchor_statement, ledger_digest
from consent.models import LedgerAnchor, LedgerEntry
from consent.tasks import send_anchor_emails as send_anchor_emails_task

logger = logging.getLogger("refrain.anchors")

ANCHOR_LOCK_TIMEOUT = "10s"


def _ledger_through() -> int:
    """The highest ledger id such that every row up to it is committed."""
    table = LedgerEntry._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SET LOCAL lock_timeout = '{ANCHOR_LOCK_TIMEOUT}'")
            cursor.execute(f"LOCK TABLE {table} IN SHARE MODE")
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608 - the model's table name
        return cursor.fetchone()[0]


def ledger_anchor_create() -> LedgerAnchor:
    """Sign a digest of every chain head and store it as an anchor; the
    auditors' e-mail is rung after commit (the beat run sends any an earlier
    run missed). Streams the heads (flat memory); holds no lock while it
    computes. Each call makes a new anchor: twice is harmless, only longer.
    """
    through = _ledger_through()
    digest = ledger_digest(ledger_through=through)
    anchor = LedgerAnchor(
        created_at=timezone.now(),
        ledger_through=digest.ledger_through,
        track_count=digest.track_count,
        row_count=digest.row_count,
        root=digest.root,
        key_id=signing.key_id(),
    )
    anchor.signature = signing.sign(anchor_statement(anchor))
    with transaction.atomic():
        anchor.save()
        ring_after_commit(send_anchor_emails_task)
    return anchor


def anchor_emails_send_pending() -> int:
    """E-mail every anchor not yet sent to each active auditor; returns the
    anchors sent. Each anchor is claimed under its row lock and marked before
    its e-mail leaves (at most once: a failed send is logged, not repeated).
    Safe to run concurrently and twice."""
    sent = 0
    for anchor_id in (
        LedgerAnchor.objects.filter(emailed_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    ):
        sent += _anchor_email_send(anchor_id=anchor_id)
    return sent


def _anchor_email_send(*, anchor_id: int) -> int:
    with transaction.atomic():
        anchor = (
            LedgerAnchor.objects.select_for_update(skip_locked=True)
            .filter(pk=anchor_id, emailed_at__isnull=True)
            .first()
        )
        if anchor is None:
            return 0
        anchor.emailed_at = timezone.now()
        anchor.save(update_fields=["emailed_at"])
    auditors = list(
        User.objects.filter(groups__name=GROUP_AUDITORS, is_active=True)
        .order_by("pk")
        .values_list("email", flat=True)
    )
    site = settings.REFRAIN_SITE_URL.rstrip("/")
    body = (
        f"Refrain signed a digest of its consent ledger at "
        f"{anchor.created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC.\n\n"
        f"Anchor {anchor.pk}: {anchor.track_count} tracks, {anchor.row_count} "
        f"ledger rows (up to row {anchor.ledger_through}).\n"
        f"Merkle root: {anchor.root}\nKey id: {anchor.key_id}\n"
        f"Signature: {anchor.signature}\n\n"
        "Keep this e-mail. If the ledger is ever rewritten, "
        "`manage.py verify_ledger --anchors` no longer finds this root, and "
        f"the list at {site}/transparency/anchors/ must still show it.\n"
        f"Public key: {site}/.well-known/refrain-keys.json\n"
    )
    subject = f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}Ledger anchor {anchor.pk}"
    try:
        send_mass_mail(
            [
                (subject, body, settings.DEFAULT_FROM_EMAIL, [email])
                for email in auditors
            ]
        )
    except Exception:  # noqa: BLE001 - at most once: logged, not retried
        logger.exception("could not e-mail ledger anchor %s", anchor.pk)
    return 1


@dataclass(frozen=True)
class AnchorProblem:
    anchor_id: int
    created_at: datetime
    reason: str

    def __str__(self) -> str:
        return (
            f"anchor {self.anchor_id} of "
            f"{self.created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC: "
            f"{self.reason}"
        )


def anchors_verify() -> tuple[int, list[AnchorProblem]]:
    """Check every anchor: its signature with the site's key, and its root and
    counts recomputed from the ledger as it stands (rows up to its
    ``ledger_through``). A difference means the rows it covered were changed,
    removed or added since it was published. Returns (anchors checked,
    problems). Read-only; one pass over the ledger per anchor."""
    jwk = signing.public_jwk()
    checked, problems = 0, []
    for anchor in LedgerAnchor.objects.order_by("pk").iterator(chunk_size=100):
        checked += 1
        problems += anchor_problems(anchor, jwk)
    return checked, problems


def anchor_problems(anchor: LedgerAnchor, jwk: dict) -> list[AnchorProblem]:
    """What is wrong with one anchor: its signature under ``jwk``, and its
    root and counts against the ledger now (one pass over the rows it
    covers). Empty when it still holds."""
    reasons = []
    if anchor.key_id != jwk["kid"]:
        reasons.append(
            f"signed with key {anchor.key_id}, not the site's key {jwk['kid']}: "
            "its signature cannot be checked"
        )
    elif not signing.verify(anchor_statement(anchor), anchor.signature, jwk):
        reasons.append("its signature does not verify")
    digest = ledger_digest(ledger_through=anchor.ledger_through)
    if digest.root != anchor.root:
        reasons.append(
            f"the ledger now gives root {digest.root}, not {anchor.root}: rows "
            "it covered were rewritten, removed or added after it was published"
        )
    if (digest.track_count, digest.row_count) != (
        anchor.track_count,
        anchor.row_count,
    ):
        reasons.append(
            f"it covered {anchor.track_count} tracks and {anchor.row_count} "
            f"rows; the ledger now has {digest.track_count} and "
            f"{digest.row_count} up to row {anchor.ledger_through}"
        )
    return [AnchorProblem(anchor.pk, anchor.created_at, r) for r in reasons]
