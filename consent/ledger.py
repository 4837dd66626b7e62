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

from django.db import connection, transaction

from catalog.models import Track
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
    entry_id: int | None  # None: the track has no ledger row at all
    consent_version: int
    reason: str

    def __str__(self) -> str:
        row = "no row" if self.entry_id is None else f"row {self.entry_id}"
        return (
            f"track {self.track_public_id} {row} (version {self.consent_version}): "
            f"{self.reason}"
        )


@dataclass
class VerifyReport:
    tracks_checked: int = 0
    rows_checked: int = 0
    breaks: list[ChainBreak] | None = None
    heads_checked: int = 0  # tracks whose head was compared with their version

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


# Every track whose version differs from its chain's newest row: a chain cut
# at its end, or deleted whole (no row, version > 0). One statement, so one
# snapshot: a track's version and its ledger rows commit together.
_HEADS_SQL = (
    "SELECT t.public_id, t.consent_version, h.head_version, "
    "(SELECT l.id FROM {ledger} l WHERE l.track_id = t.id "
    "AND l.consent_version = h.head_version) "
    "FROM {track} t LEFT JOIN (SELECT track_id, MAX(consent_version) "
    "AS head_version FROM {ledger} GROUP BY track_id) h ON h.track_id = t.id "
    "WHERE COALESCE(h.head_version, 0) <> t.consent_version ORDER BY t.id"
)


def verify_heads(*, report: VerifyReport, chunk: int = 5000) -> VerifyReport:
    """Compare every track's ``consent_version`` with its chain's newest row
    and add a break for each track where they differ, into ``report``.

    Every change bumps the version and appends its row in one transaction,
    so the newest row's version equals the track's: a lower one means rows
    were removed from the end of the chain (which ``verify_chains`` alone
    cannot see: what remains is a valid chain), none at all that the whole
    chain is gone. Set-based (the database groups and joins), streamed in
    ``chunk`` rows: flat memory whatever the catalogue's size.
    """
    sql = _HEADS_SQL.format(
        ledger=LedgerEntry._meta.db_table, track=Track._meta.db_table
    )
    report.heads_checked = Track.objects.count()
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(sql)
        while batch := cursor.fetchmany(chunk):
            report.breaks += [_head_break(*row) for row in batch]
    return report


def _head_break(public_id, version, head_version, head_id) -> ChainBreak:
    if head_version is None:
        return ChainBreak(
            public_id, None, version,
            f"the track is at version {version} but its whole chain is missing",
        )  # fmt: skip
    if head_version < version:
        reason = (
            f"the newest row is version {head_version} but the track is at "
            f"version {version}: the end of the chain is missing"
        )
    else:
        reason = (
            f"the newest row is version {head_version}, ahead of the track's "
            f"version {version}"
        )
    return ChainBreak(public_id, head_id, head_version, reason)


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
