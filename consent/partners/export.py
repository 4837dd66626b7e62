"""Signed exports: every track eligible for one use, as one file.

A worker writes the file (JSON Lines or CSV) from one consistent read of the
database and signs it: ``signature`` is the site's Ed25519 signature
(``consent.signing``, public key at ``/.well-known/refrain-keys.json``) of
the file's SHA-256 digest (its 32 bytes), and ``statement_signature`` signs
the statement of what the file is (use, format, as of, digest, rows, change
feed cursor) as canonical JSON, so a partner can later prove what Refrain
said and when. The file is served from disk in blocks (flat memory).

One snapshot per (use, format, feed position): a request gets the snapshot
of the current position, or the newest one younger than
``REFRAIN_EXPORT_MAX_AGE_SECONDS`` (with the change feed cursor to catch up
from) while a fresher one is built; with neither, a build starts and the
answer is "come back".
"""

import csv
import hashlib
import io
import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config.doorbell import ring_after_commit
from consent import signing
from consent.db import try_session_lock
from consent.models import ExportSnapshot, TrackConsent
from consent.partners.feed import cursor_for, feed_position
from consent.tasks import build_export as build_export_task

REFRESH_AFTER = timedelta(seconds=60)  # a served snapshot older: build anew
# A build not finished after this is rung again (its worker may have died;
# a build still running holds its lock, and the second ring returns at once).
STALE_BUILD = timedelta(minutes=2)
EXPORT_LOCK = 0x5EF4A1_1000_0000
KEEP_PER_KIND = 3
FIELDS = ["id", "isrc", "consent_version"]
MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv"}


def export_dir() -> Path:
    path = Path(settings.REFRAIN_EXPORT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def export_for(*, use: str, fmt: str) -> tuple[ExportSnapshot | None, ExportSnapshot]:
    """The ready snapshot to serve now (or None) and the snapshot of the
    current feed position (ready, or building: its build is rung)."""
    position = feed_position()
    ready = (
        ExportSnapshot.objects.filter(
            use=use, format=fmt, status=ExportSnapshot.Status.READY
        )
        .order_by("-feed_seq")
        .first()
    )
    now = timezone.now()
    if ready is not None and ready.feed_seq >= position:
        return ready, ready
    fresh_enough = ready is not None and now - ready.as_of <= timedelta(
        seconds=settings.REFRAIN_EXPORT_MAX_AGE_SECONDS
    )
    if fresh_enough and now - ready.as_of < REFRESH_AFTER:
        return ready, ready
    current = _building(use=use, fmt=fmt, position=position)
    return (ready if fresh_enough else None), current


@transaction.atomic
def _building(*, use: str, fmt: str, position: int) -> ExportSnapshot:
    snapshot, created = ExportSnapshot.objects.get_or_create(
        use=use, format=fmt, feed_seq=position
    )
    stale = (
        snapshot.status == ExportSnapshot.Status.BUILDING
        and timezone.now() - snapshot.created_at > STALE_BUILD
    )
    if created or snapshot.status == ExportSnapshot.Status.FAILED or stale:
        if snapshot.status == ExportSnapshot.Status.FAILED:
            ExportSnapshot.objects.filter(pk=snapshot.pk).update(
                status=ExportSnapshot.Status.BUILDING, error=""
            )
            snapshot.status = ExportSnapshot.Status.BUILDING
        ring_after_commit(build_export_task, snapshot.pk)
    return snapshot


def statement(snapshot: ExportSnapshot) -> dict:
    """What the snapshot is, as its ``statement_signature`` signs it."""
    return {
        "alg": "EdDSA",
        "as_of": snapshot.as_of.isoformat().replace("+00:00", "Z"),
        "changes_cursor": cursor_for(snapshot.feed_seq),
        "format": snapshot.format,
        "kid": snapshot.key_id,
        "rows": snapshot.rows,
        "sha256": snapshot.sha256,
        "use": snapshot.use,
    }


def canonical(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def signature_document(snapshot: ExportSnapshot) -> dict:
    """The detached signature (``…/export.sig``): the statement, the
    signature of the digest and the signature of the statement."""
    document = statement(snapshot)
    return {
        **document,
        "snapshot": snapshot.pk,
        "signature": snapshot.signature,
        "statement_signature": signing.sign(canonical(document)),
        "public_keys": "/.well-known/refrain-keys.json",
    }


def _rows(use: str):
    """(public id, isrc, version) of every eligible track, by track id."""
    query = (
        TrackConsent.objects.filter(use=use, eligible=True)
        .order_by("track_id")
        .values_list("track__public_id", "track__isrc", "track__consent_version")
    )
    return query.iterator(chunk_size=10_000)


def _write(handle, fmt: str, rows) -> int:
    """Write the rows in blocks of 5,000; returns how many."""
    count = 0
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(FIELDS)
        for public_id, isrc, version in rows:
            writer.writerow((public_id, isrc or "", version))
            count += 1
            if count % 5000 == 0:
                handle.write(buffer.getvalue().encode())
                buffer.seek(0)
                buffer.truncate()
        handle.write(buffer.getvalue().encode())
        return count
    block: list[bytes] = []
    for public_id, isrc, version in rows:
        block.append(
            orjson.dumps({"id": public_id, "isrc": isrc, "consent_version": version})
        )
        count += 1
        if count % 5000 == 0:
            handle.write(b"\n".join(block) + b"\n")
            block.clear()
    if block:
        handle.write(b"\n".join(block) + b"\n")
    return count


class _Hashing:
    def __init__(self, handle):
        self.handle, self.digest, self.size = handle, hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.size += len(data)
        self.handle.write(data)


def export_build(*, snapshot_id: int) -> ExportSnapshot | None:
    """Write and sign the snapshot's file; None if it is not to be built."""
    with try_session_lock(EXPORT_LOCK + snapshot_id) as held:
        if not held:
            return None  # another worker is building it
        snapshot = ExportSnapshot.objects.filter(
            pk=snapshot_id, status=ExportSnapshot.Status.BUILDING
        ).first()
        if snapshot is None:
            return None
        return _build(snapshot)


def _build(snapshot: ExportSnapshot) -> ExportSnapshot:
    snapshot_id = snapshot.pk
    name = (
        f"{snapshot.use}-{snapshot.feed_seq}-{secrets.token_hex(4)}.{snapshot.format}"
    )
    path = export_dir() / name
    # One snapshot of the database for the whole read (a transaction of its
    # own; inside another one, as in a test, that one's).
    repeatable = connection.vendor == "postgresql" and not connection.in_atomic_block
    try:
        with transaction.atomic():
            if repeatable:
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            as_of = timezone.now()
            with open(path, "wb") as handle:
                hashing = _Hashing(handle)
                rows = _write(hashing, snapshot.format, _rows(snapshot.use))
                handle.flush()
                os.fsync(handle.fileno())
    except Exception as error:
        path.unlink(missing_ok=True)
        ExportSnapshot.objects.filter(pk=snapshot_id).update(
            status=ExportSnapshot.Status.FAILED, error=str(error)[:300]
        )
        raise
    digest = hashing.digest.digest()
    ExportSnapshot.objects.filter(pk=snapshot_id).update(
        status=ExportSnapshot.Status.READY,
        as_of=as_of,
        path=name,
        rows=rows,
        size=hashing.size,
        sha256=digest.hex(),
        signature=signing.sign(digest),
        key_id=signing.key_id(),
        finished_at=timezone.now(),
        error="",
    )
    return ExportSnapshot.objects.get(pk=snapshot_id)


def export_forget(*, snapshot: ExportSnapshot) -> None:
    """Drop a snapshot whose file is gone: the next request builds anew."""
    ExportSnapshot.objects.filter(pk=snapshot.pk).delete()


def export_path(snapshot: ExportSnapshot) -> Path:
    return export_dir() / snapshot.path


def exports_prune() -> int:
    """Delete all but the newest ready snapshots of each kind (and their
    files), and failed ones older than a day."""
    removed = 0
    for use, fmt in (
        ExportSnapshot.objects.values_list("use", "format").distinct().order_by()
    ):
        old = ExportSnapshot.objects.filter(
            use=use, format=fmt, status=ExportSnapshot.Status.READY
        ).order_by("-feed_seq")[KEEP_PER_KIND:]
        for snapshot in old:
            export_path(snapshot).unlink(missing_ok=True)
            snapshot.delete()
            removed += 1
    removed += ExportSnapshot.objects.filter(
        status=ExportSnapshot.Status.FAILED,
        created_at__lt=timezone.now() - timedelta(days=1),
    ).delete()[0]
    return removed
