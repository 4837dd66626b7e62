"""The tamper-evident ledger: canonical encoding, hash chain, verification.

Each row's hash is ``sha256(canonical(row) + prev_hash)`` where ``prev_hash``
is the hash of the same track's previous row (64 zeros for the first), so
altering, removing or reordering any row breaks every later hash of that track.
"""

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from consent.models import LedgerEntry

GENESIS_HASH = "0" * 64


def encode_timestamp(value: datetime) -> str:
    """A ledger row's time as its canonical encoding writes it (UTC,
    microseconds): equal to strftime("%Y-%m-%dT%H:%M:%S.%fZ") at a third of
    its cost."""
    return (
        value.astimezone(UTC).replace(tzinfo=None).isoformat("T", "microseconds") + "Z"
    )


def canonical(
    *,
    track_public_id: str,
    consent_version: int,
    use: str,
    old_state: str,
    new_state: str,
    old_eligible: bool,
    new_eligible: bool,
    actor_id: int | None,
    source: str,
    created_at: datetime,
    policy_version: int,
    request_id: str,
    note: str,
) -> bytes:
    """The row as compact JSON with sorted keys (stable across databases).

    Give the eligibilities as booleans (``entry_encoding`` does); the
    PostgreSQL switch passes placeholders here for values read under the lock.
    """
    return json.dumps(
        {
            "track": track_public_id,
            "consent_version": consent_version,
            "use": use,
            "old_state": old_state,
            "new_state": new_state,
            "old_eligible": old_eligible,
            "new_eligible": new_eligible,
            "actor": actor_id,
            "source": source,
            "created_at": encode_timestamp(created_at),
            "policy_version": policy_version,
            "request_id": request_id,
            "note": note,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def chain_hash(encoded: bytes, prev_hash: str) -> str:
    return hashlib.sha256(encoded + prev_hash.encode("ascii")).hexdigest()


def encoded_fields(entry) -> dict:
    """The fields of a ledger row (a model instance or any object with them)
    that its hash covers, as ``canonical`` takes them."""
    return {
        "consent_version": entry.consent_version,
        "use": entry.use,
        "old_state": entry.old_state,
        "new_state": entry.new_state,
        "old_eligible": entry.old_eligible,
        "new_eligible": entry.new_eligible,
        "actor_id": entry.actor_id,
        "source": entry.source,
        "created_at": entry.created_at,
        "policy_version": entry.policy_version,
        "request_id": entry.request_id,
        "note": entry.note,
    }


def entry_encoding(entry, track_public_id: str) -> bytes:
    """The canonical encoding of a ledger row: what its hash covers."""
    hashed = encoded_fields(entry)
    hashed["old_eligible"] = bool(hashed["old_eligible"])
    hashed["new_eligible"] = bool(hashed["new_eligible"])
    return canonical(track_public_id=track_public_id, **hashed)


@dataclass(slots=True)
class LedgerRow:
    """A ledger row's stored fields without a model instance: what the
    services write (COPY, the switch's answer) and verification reads back."""

    track_id: int
    consent_version: int
    use: str
    old_state: str
    new_state: str
    old_eligible: bool
    new_eligible: bool
    actor_id: int | None
    source: str
    created_at: datetime
    policy_version: int
    request_id: str
    note: str
    prev_hash: str
    entry_hash: str


# In the model's field order (``LedgerEntry.from_db`` relies on it).
LEDGER_COLUMNS = tuple(field.name for field in dataclasses.fields(LedgerRow))


@dataclass(frozen=True)
class ChainBreak:
    track_public_id: str
    entry_id: int
    consent_version: int
    reason: str


@dataclass
class VerifyReport:
    tracks_checked: int = 0
    rows_checked: int = 0
    breaks: list[ChainBreak] | None = None

    def __post_init__(self):
        if self.breaks is None:
            self.breaks = []


def verify_chains(
    *, track_ids: list[int] | None = None, chunk: int = 5000
) -> VerifyReport:
    """Walk every track's chain in version order and report each break.

    Streams rows ordered by (track, version) with constant memory. A break is
    a wrong ``prev_hash`` link, a recomputed hash that differs from the stored
    one (the row was altered), or a gap in the versions (a row was removed).
    """
    report = VerifyReport()
    rows = LedgerEntry.objects.order_by("track_id", "consent_version").values_list(
        "id", "track__public_id", *LEDGER_COLUMNS
    )
    if track_ids is not None:
        rows = rows.filter(track_id__in=track_ids)
    current_track = None
    expected_prev = GENESIS_HASH
    expected_version = 1
    for entry_id, public_id, *stored in _iterate(rows, chunk):
        row = LedgerRow(*stored)
        if row.track_id != current_track:
            current_track = row.track_id
            expected_prev = GENESIS_HASH
            expected_version = 1
            report.tracks_checked += 1
        report.rows_checked += 1
        problems = []
        if row.consent_version != expected_version:
            problems.append(
                f"version {row.consent_version} where {expected_version} was expected"
            )
        if row.prev_hash != expected_prev:
            problems.append("link to the previous row is broken")
        if chain_hash(entry_encoding(row, public_id), row.prev_hash) != row.entry_hash:
            problems.append("row content does not match its hash")
        for problem in problems:
            report.breaks.append(
                ChainBreak(public_id, entry_id, row.consent_version, problem)
            )
        expected_prev = row.entry_hash
        expected_version = row.consent_version + 1
    return report


def _iterate(queryset, chunk: int) -> Iterator[tuple]:
    """Keyset-paginate (track, version) so memory stays flat on any database."""
    last = None
    while True:
        page = queryset
        if last is not None:
            track_id, version = last
            page = page.filter(track_id__gte=track_id).exclude(
                track_id=track_id, consent_version__lte=version
            )
        batch = list(page[:chunk])
        if not batch:
            return
        yield from batch
        last = (batch[-1][2], batch[-1][3])
