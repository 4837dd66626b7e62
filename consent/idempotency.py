"""Idempotency keys for API writes (the ``Idempotency-Key`` header).

A client that retries a write (a timeout, a dropped connection) sends the same
key again and gets the first answer back, status and body, without the write
happening twice. The same key with a different request is refused.

How concurrent requests with one key are kept apart
---------------------------------------------------
The record of a key is inserted *first*, inside the transaction that then
runs the write, and filled in with the answer before the commit. The unique
(user, key) constraint does the rest:

* on PostgreSQL a second INSERT of the same (user, key) waits on the first
  transaction's uncommitted index entry; when the first commits, it fails
  with an IntegrityError and the second reads the committed answer and
  replays it; if the first rolled back, the second's INSERT succeeds and it
  runs the write itself. On SQLite writers are serialised by the database
  lock, with the same outcome.
* so at most one transaction per key ever runs the write, a replay never
  sees a half-done record (it only exists committed, with its answer), and
  no "in progress" state or polling is needed.

Why not a lock on an existing row (``select_for_update``): the first request
has no row to lock yet, and two requests that both find none would both
write. Why not write first and record afterwards: two requests would both
write before either recorded. Why not a second transaction for the record:
a crash between the two would lose the record or the write.

Only answers of writes that ran are stored (200, whether or not anything
changed). A rejected request (locked use, stale ``If-Match``) raises out of
``run``, the transaction rolls back with its record, and nothing is written:
a retry re-evaluates, which gives the same answer (a stale version stays
stale) unless the reason went away (a policy change unlocked the use).

Records are kept for ``IDEMPOTENCY_TTL`` (24 hours): an older record of the
same key is deleted and the key claimed afresh, and
``idempotency_records_purge`` removes old records in bulk (beat runs it
hourly, ``consent.tasks.purge_idempotency_records``; nothing depends on it
running).
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from consent.models import IdempotencyRecord

IDEMPOTENCY_TTL = timedelta(hours=24)


class IdempotencyKeyReused(Exception):
    """The key was already used for a different request."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict
    replayed: bool = False


def request_fingerprint(*, method: str, path: str, body: dict) -> str:
    """SHA-256 of the method, the path and the body as canonical JSON.

    The parsed body is re-encoded with sorted keys and no spaces, so the same
    request sent by another client library (other key order, other spacing)
    has the same fingerprint.
    """
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{method.upper()}\n{path}\n{encoded}".encode()).hexdigest()


def idempotent_run(
    *,
    user: User,
    key: str,
    fingerprint: str,
    run: Callable[[], tuple[int, dict]],
) -> Answer:
    """Run ``run`` at most once per (user, key) and return its answer.

    One transaction around the claim of the key and ``run`` (which may open
    its own, nested, transactions). A repeated request gets the stored answer
    with ``replayed=True``; a request whose fingerprint differs raises
    ``IdempotencyKeyReused``. An exception from ``run`` rolls back the claim
    with everything else and propagates. See the module docstring for the
    reasoning under concurrency.
    """
    for _attempt in range(3):
        with transaction.atomic():
            now = timezone.now()
            IdempotencyRecord.objects.filter(
                user=user, key=key, created_at__lt=now - IDEMPOTENCY_TTL
            ).delete()
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        user=user,
                        key=key,
                        fingerprint=fingerprint,
                        status=0,
                        response={},
                        created_at=now,
                    )
            except IntegrityError:
                existing = IdempotencyRecord.objects.filter(user=user, key=key).first()
                if existing is None:
                    continue  # purged between our INSERT and this read: claim again
                if existing.fingerprint != fingerprint:
                    raise IdempotencyKeyReused(
                        "This Idempotency-Key was already used for a different "
                        "request; use a new key for a new request."
                    ) from None
                return Answer(existing.status, existing.response, replayed=True)
            status, body = run()
            record.status = status
            record.response = body
            record.save(update_fields=["status", "response"])
            return Answer(status, body)
    raise RuntimeError("could not claim the idempotency key")  # pragma: no cover


def idempotency_records_purge(*, older_than: timedelta = IDEMPOTENCY_TTL) -> int:
    """Delete records older than ``older_than``; returns how many.

    Safe to run at any time and concurrently with requests: a key whose
    record is gone is simply claimed afresh by its next request.
    """
    deleted, _ = IdempotencyRecord.objects.filter(
        created_at__lt=timezone.now() - older_than
    ).delete()
    return deleted
