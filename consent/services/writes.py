"""The machinery every consent write shares: lock tracks, append ledger rows,
apply decisions and eligibility (ARCHITECTURE.md, "The write path").

Invariants kept by the services built on these, each write in one
transaction:

* every track has one ``TrackConsent`` row per use;
* ``TrackConsent.eligible`` equals ``policy.is_eligible`` of the current rule,
  the decision and the artist's default;
* every change of a decision or of eligibility appends exactly one ledger row,
  hash-chained to the track's previous row, and bumps the track's
  ``consent_version`` (rows are written under the track's row lock, in
  primary-key order, so versions are contiguous);
* every change records the track's new version in the propagation outbox
  (``consent.propagation``), in the same transaction;
* setting what is already there writes nothing.
"""

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection

from catalog.models import Track
from consent.db import id_condition
from consent.ledger import (
    GENESIS_HASH,
    LEDGER_COLUMNS,
    LedgerRow,
    chain_hash,
    entry_encoding,
)
from consent.models import (
    ArtistDefault,
    LedgerEntry,
    Receipt,
    Source,
    State,
    TrackConsent,
)
from consent.propagation.outbox import propagation_record


class ConsentError(Exception):
    """A consent change that cannot be made; the message is for the artist."""


class ConsentLocked(ConsentError):
    """The policy prohibits this use for this track."""


class VersionConflict(ConsentError):
    """The caller's ``If-Match`` consent version is stale."""


def state_of(decision: str) -> str:
    return decision or State.DEFAULT


_STATES = tuple(State.values)


def decision_of(state: str) -> str:
    if state not in _STATES:
        raise ConsentError(f"“{state}” is not a state (granted, denied or default).")
    return "" if state == State.DEFAULT else state


@dataclass(frozen=True)
class Change:
    """One (track, use) change, computed under the track's lock."""

    track_id: int
    public_id: str
    use: str
    old_decision: str
    new_decision: str
    old_eligible: bool
    new_eligible: bool
    note: str = ""


@dataclass
class LockedTrack:
    id: int
    public_id: str
    artist_id: int
    license_class: str
    consent_version: int
    head_hash: str
    isrc: str | None = None
    title: str = ""


@dataclass
class WriteResult:
    entries: list[LedgerEntry] = field(default_factory=list)
    versions: dict[int, int] = field(default_factory=dict)


# PostgreSQL, READ COMMITTED: a ``SELECT … FOR UPDATE`` that waited for another
# transaction's lock returns the newest version of the locked row, but reads
# every other table (the ledger head, the decision) as of the statement's
# start, before the commit it waited for: a stale head breaks the hash chain,
# a stale decision is logged as the wrong ``old_state``. This last column is
# false when the locked row is newer than the statement's snapshot; the caller
# then reads again, in a second statement that sees that commit (the lock is
# already held, so it does not wait).
_SNAPSHOT_IS_CURRENT = (
    ", t.xmin = (SELECT s.xmin FROM catalog_track s WHERE s.id = t.id)"
)


def lock_tracks(
    track_ids: Iterable[int], *, artist_id: int | None = None
) -> dict[int, LockedTrack]:
    """Lock tracks in primary-key order and read their ledger heads (one query,
    two if it had to wait for a concurrent writer of one of them).

    With ``artist_id``, tracks of other artists are left out (never locked).
    """
    ids = sorted(set(track_ids))
    if not ids:
        return {}
    condition, params = id_condition("t.id", ids)
    if artist_id is not None:
        condition += " AND t.artist_id = %s"
        params.append(artist_id)
    postgres = connection.vendor == "postgresql"
    sql = (
        "SELECT t.id, t.public_id, t.artist_id, t.license_class, t.consent_version, "  # noqa: S608 - fixed fragments, id condition; ids are parameters
        "(SELECT l.entry_hash FROM consent_ledgerentry l WHERE l.track_id = t.id "
        "AND l.consent_version = t.consent_version), t.isrc"
        f"{_SNAPSHOT_IS_CURRENT if postgres else ''} "
        f"FROM catalog_track t WHERE {condition} ORDER BY t.id"
    )
    if connection.features.has_select_for_update_of:
        sql += " FOR UPDATE OF t"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        if postgres and not all(row[7] for row in rows):
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    return {
        row[0]: LockedTrack(*row[:5], head_hash=row[5] or GENESIS_HASH, isrc=row[6])
        for row in rows
    }


def ledger_rows(
    *,
    changes: list[Change],
    tracks: dict[int, LockedTrack],
    actor_id: int | None,
    source: str,
    request_id: str,
    policy_version: int,
    now: datetime,
) -> list[LedgerRow]:
    """The ledger rows of these changes: versions and hashes assigned per track
    in order, each chained to the track's head (which moves along)."""
    entries = []
    for change in changes:
        track = tracks[change.track_id]
        track.consent_version += 1
        row = LedgerRow(
            track_id=track.id,
            consent_version=track.consent_version,
            use=change.use,
            old_state=state_of(change.old_decision),
            new_state=state_of(change.new_decision),
            old_eligible=change.old_eligible,
            new_eligible=change.new_eligible,
            actor_id=actor_id,
            source=source,
            created_at=now,
            policy_version=policy_version,
            request_id=request_id,
            note=change.note,
            prev_hash=track.head_hash,
            entry_hash="",
        )
        entry_hash = chain_hash(entry_encoding(row, track.public_id), row.prev_hash)
        row.entry_hash = entry_hash
        entries.append(row)
        track.head_hash = entry_hash
    return entries


def write_changes(
    *,
    changes: list[Change],
    tracks: dict[int, LockedTrack],
    actor_id: int | None,
    source: str,
    request_id: str,
    policy_version: int,
    now: datetime,
) -> WriteResult:
    """Append ledger rows and apply the changes. Caller holds the track locks.

    Versions and hashes are assigned per track in the order of ``changes``.
    """
    result = WriteResult()
    if not changes:
        return result
    entries = ledger_rows(
        changes=changes,
        tracks=tracks,
        actor_id=actor_id,
        source=source,
        request_id=request_id,
        policy_version=policy_version,
        now=now,
    )
    for entry in entries:
        result.versions[entry.track_id] = entry.consent_version
    if connection.vendor == "postgresql" and len(entries) > 50:
        copy_ledger(entries)
        result.entries = entries
    else:
        result.entries = LedgerEntry.objects.bulk_create(
            [
                LedgerEntry(**{name: getattr(row, name) for name in LEDGER_COLUMNS})
                for row in entries
            ],
            batch_size=2000,
        )

    if len(changes) == 1:
        change = changes[0]
        TrackConsent.objects.filter(track_id=change.track_id, use=change.use).update(
            decision=change.new_decision, eligible=change.new_eligible, updated_at=now
        )
        touched = {} if source == Source.POLICY else {"updated_at": now}
        Track.objects.filter(pk=change.track_id).update(
            consent_version=result.versions[change.track_id], **touched
        )
    else:
        bulk_update_consents(changes, now)
        bulk_update_versions(result.versions, now, touch=source != Source.POLICY)
    # Every consumer hears of it: one outbox row per track, same transaction.
    propagation_record(versions=result.versions, now=now)
    return result


def copy_ledger(entries: list[LedgerRow]) -> None:
    """Append many ledger rows with COPY (bulk and policy runs on PostgreSQL)."""
    sql = f"COPY {LedgerEntry._meta.db_table} ({', '.join(LEDGER_COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for entry in entries:
            copy.write_row(tuple(getattr(entry, name) for name in LEDGER_COLUMNS))


def bulk_update_consents(changes: list[Change], now: datetime) -> None:
    # The last change per (track, use) wins (a track may change twice in one
    # batch only through distinct uses, but be exact anyway).
    final = {(c.track_id, c.use): c for c in changes}
    table = TrackConsent._meta.db_table
    items = list(final.values())
    with connection.cursor() as cursor:
        for start in range(0, len(items), 1000):
            chunk = items[start : start + 1000]
            values = ", ".join(["(%s, %s, %s, %s)"] * len(chunk))
            params: list = []
            for c in chunk:
                params += [c.track_id, c.use, c.new_decision, c.new_eligible]
            if connection.vendor == "postgresql":
                cursor.execute(
                    f"UPDATE {table} AS tc SET decision = v.decision, "  # noqa: S608 - model table name; values are parameters
                    "eligible = v.eligible, updated_at = %s "
                    "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bool[]) "
                    "AS v(track_id, use, decision, eligible) "
                    "WHERE tc.track_id = v.track_id AND tc.use = v.use",
                    [
                        now,
                        [c.track_id for c in chunk],
                        [c.use for c in chunk],
                        [c.new_decision for c in chunk],
                        [c.new_eligible for c in chunk],
                    ],
                )
            else:
                cursor.execute(
                    f"WITH v(track_id, use, decision, eligible) AS (VALUES {values}) "  # noqa: S608 - model table, placeholders; values are parameters
                    f"UPDATE {table} SET "
                    f"decision = (SELECT decision FROM v WHERE v.track_id = "
                    f"{table}.track_id AND v.use = {table}.use), "
                    f"eligible = (SELECT eligible FROM v WHERE v.track_id = "
                    f"{table}.track_id AND v.use = {table}.use), updated_at = %s "
                    f"WHERE EXISTS (SELECT 1 FROM v WHERE v.track_id = "
                    f"{table}.track_id AND v.use = {table}.use)",
                    [*params, now],
                )


def bulk_update_versions(
    versions: dict[int, int], now: datetime, *, touch: bool = True
) -> None:
    """Store the new ``consent_version`` of each track (and, with ``touch``, its
    "last change" time). Without ``touch`` no indexed column changes, so
    PostgreSQL can update the rows in place (HOT) on the pages' free space."""
    table = Track._meta.db_table
    items = sorted(versions.items())
    touched = "updated_at = %s, " if touch else ""
    with connection.cursor() as cursor:
        for start in range(0, len(items), 5000):
            chunk = items[start : start + 5000]
            if connection.vendor == "postgresql":
                cursor.execute(
                    f"UPDATE {table} AS t SET {touched}consent_version = v.version "  # noqa: S608 - model table, fixed fragment; values are parameters
                    "FROM unnest(%s::bigint[], %s::int[]) AS v(id, version) "
                    "WHERE t.id = v.id",
                    [
                        *([now] if touch else []),
                        [pk for pk, _ in chunk],
                        [version for _, version in chunk],
                    ],
                )
            else:
                values = ", ".join(["(%s, %s)"] * len(chunk))
                params = [value for pair in chunk for value in pair]
                cursor.execute(
                    f"WITH v(id, version) AS (VALUES {values}) UPDATE {table} SET "  # noqa: S608 - model table, placeholders; values are parameters
                    f"{touched}consent_version = (SELECT version FROM v "
                    f"WHERE v.id = {table}.id) WHERE id IN (SELECT id FROM v)",
                    [*params, *([now] if touch else [])],
                )


def defaults_for(artist_ids: Iterable[int]) -> dict[tuple[int, str], str]:
    return {
        (artist_id, use): decision
        for artist_id, use, decision in ArtistDefault.objects.filter(
            artist_id__in=set(artist_ids)
        ).values_list("artist_id", "use", "decision")
    }


@dataclass
class SetResult:
    """What ``consent_set`` did, on either write path."""

    changed: bool
    consent_version: int
    decision: str
    eligible: bool
    rule: str
    default: str | None = None
    entry: LedgerEntry | None = None
    receipt: Receipt | None = None
    track: LockedTrack | None = None


def version_conflict(version: int) -> VersionConflict:
    return VersionConflict(f"The track changed meanwhile (version {version}).")


def new_request_id() -> str:
    return secrets.token_hex(12)
