"""Every consent write goes through here (ARCHITECTURE.md, "The write path").

Invariants kept by these services, each in one short transaction:

* every track has one ``TrackConsent`` row per use;
* ``TrackConsent.eligible`` equals ``policy.is_eligible`` of the current rule,
  the decision and the artist's default;
* every change of a decision or of eligibility appends exactly one ledger row,
  hash-chained to the track's previous row, and bumps the track's
  ``consent_version`` (rows are written under the track's row lock, in
  primary-key order, so versions are contiguous);
* setting what is already there writes nothing.
"""

import functools
import json
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Q
from django.dispatch import receiver
from django.utils import timezone

from accounts.models import User
from catalog.models import Track
from consent.ledger import (
    GENESIS_HASH,
    LEDGER_COLUMNS,
    LedgerRow,
    canonical,
    chain_hash,
    encode_timestamp,
    encoded_fields,
    entry_encoding,
)
from consent.models import (
    ArtistDefault,
    BulkJob,
    Decision,
    LedgerEntry,
    PolicyNotice,
    PolicyRule,
    PolicyVersion,
    Receipt,
    Rule,
    Source,
    State,
    TrackConsent,
)
from consent.policy import Policy, is_eligible, policy_current
from consent.receipts import receipt_payload, receipt_times
from consent.uses import USE_ORDER
from consent.uses import USES as USES_BY_SLUG


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


def _id_condition(column: str, ids: list[int]) -> tuple[str, list]:
    """``column = ANY(%s)`` with one array parameter on PostgreSQL (a short,
    cacheable statement however many ids), ``IN (…)`` elsewhere."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(ids)]
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", list(ids)


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


def _lock_tracks(
    track_ids: Iterable[int], *, artist_id: int | None = None
) -> dict[int, LockedTrack]:
    """Lock tracks in primary-key order and read their ledger heads (one query,
    two if it had to wait for a concurrent writer of one of them).

    With ``artist_id``, tracks of other artists are left out (never locked).
    """
    ids = sorted(set(track_ids))
    if not ids:
        return {}
    condition, params = _id_condition("t.id", ids)
    if artist_id is not None:
        condition += " AND t.artist_id = %s"
        params.append(artist_id)
    postgres = connection.vendor == "postgresql"
    sql = (
        "SELECT t.id, t.public_id, t.artist_id, t.license_class, t.consent_version, "
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


def _ledger_rows(
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


def _write_changes(
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
    entries = _ledger_rows(
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
        _copy_ledger(entries)
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
        return result
    _bulk_update_consents(changes, now)
    _bulk_update_versions(result.versions, now, touch=source != Source.POLICY)
    return result


def _copy_ledger(entries: list[LedgerRow]) -> None:
    """Append many ledger rows with COPY (bulk and policy runs on PostgreSQL)."""
    sql = f"COPY {LedgerEntry._meta.db_table} ({', '.join(LEDGER_COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for entry in entries:
            copy.write_row(tuple(getattr(entry, name) for name in LEDGER_COLUMNS))


def _bulk_update_consents(changes: list[Change], now: datetime) -> None:
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
                    f"UPDATE {table} AS tc SET decision = v.decision, "
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
                    f"WITH v(track_id, use, decision, eligible) AS (VALUES {values}) "
                    f"UPDATE {table} SET "
                    f"decision = (SELECT decision FROM v WHERE v.track_id = "
                    f"{table}.track_id AND v.use = {table}.use), "
                    f"eligible = (SELECT eligible FROM v WHERE v.track_id = "
                    f"{table}.track_id AND v.use = {table}.use), updated_at = %s "
                    f"WHERE EXISTS (SELECT 1 FROM v WHERE v.track_id = "
                    f"{table}.track_id AND v.use = {table}.use)",
                    [*params, now],
                )


def _bulk_update_versions(
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
                    f"UPDATE {table} AS t SET {touched}consent_version = v.version "
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
                    f"WITH v(id, version) AS (VALUES {values}) UPDATE {table} SET "
                    f"{touched}consent_version = (SELECT version FROM v "
                    f"WHERE v.id = {table}.id) WHERE id IN (SELECT id FROM v)",
                    [*params, *([now] if touch else [])],
                )


def _defaults_for(artist_ids: Iterable[int]) -> dict[tuple[int, str], str]:
    return {
        (artist_id, use): decision
        for artist_id, use, decision in ArtistDefault.objects.filter(
            artist_id__in=set(artist_ids)
        ).values_list("artist_id", "use", "decision")
    }


def _receipt_create(
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
        transaction.on_commit(_ring_receipts_doorbell)
    return receipt


_last_doorbell = 0.0


def _ring_receipts_doorbell() -> None:
    """Wake a worker to e-mail pending receipts, at most once per
    ``REFRAIN_RECEIPT_DOORBELL_SECONDS`` per process.

    The receipt row is the outbox: one message sends every pending receipt,
    so a burst of switches costs one publish, not one each, and a message
    that is skipped or lost only delays the e-mail until the beat sweep.
    """
    global _last_doorbell
    now = time.monotonic()
    if now - _last_doorbell < settings.REFRAIN_RECEIPT_DOORBELL_SECONDS:
        return
    _last_doorbell = now
    from consent.tasks import send_pending_receipts as send_pending_receipts_task

    send_pending_receipts_task.delay()


def receipts_send_pending(*, limit: int = 1000) -> int:
    """E-mail every receipt not yet sent, one e-mail each (immediate mode).

    Safe to run concurrently and twice: ``receipt_email_send`` claims each
    receipt under its row lock and marks it before the e-mail leaves.
    """
    if settings.REFRAIN_RECEIPT_EMAILS != "immediate":
        return 0
    sent = 0
    pending = Receipt.objects.filter(emailed_at__isnull=True).order_by("pk")
    for receipt_id in list(pending.values_list("pk", flat=True)[:limit]):
        sent += receipt_email_send(receipt_id=receipt_id)
    return sent


# --- One change --------------------------------------------------------------


@dataclass
class SetResult:
    changed: bool
    consent_version: int
    decision: str
    eligible: bool
    rule: str
    default: str | None = None
    entry: LedgerEntry | None = None
    receipt: Receipt | None = None
    track: LockedTrack | None = None


_LOCK_FOR_SET_SQL = """
SELECT t.id, t.public_id, t.artist_id, t.license_class, t.consent_version,
       t.title,
       (SELECT l.entry_hash FROM consent_ledgerentry l
         WHERE l.track_id = t.id AND l.consent_version = t.consent_version),
       t.isrc, tc.decision, tc.eligible,
       (SELECT d.decision FROM consent_artistdefault d
         WHERE d.artist_id = t.artist_id AND d.use = tc.use),
       r.rule, v.number
  FROM catalog_track t
  JOIN consent_trackconsent tc ON tc.track_id = t.id AND tc.use = %s
  JOIN consent_policyversion v
    ON v.number = (SELECT MAX(number) FROM consent_policyversion)
  JOIN consent_policyrule r
    ON r.version_id = v.id AND r.license_class = t.license_class AND r.use = tc.use
 WHERE {where}
"""


def _lock_for_set(
    *,
    use: str,
    track_id: int | None = None,
    public_id: str | None = None,
    owner_id: int | None = None,
):
    """Lock one track and read all a single change needs, in one statement:
    the ledger head, the decision and eligibility for ``use``, the artist's
    default, the current rule and the current policy version (SQLite, where
    the write lock taken at BEGIN serialises writers; PostgreSQL does all of
    a change in ``consent_switch()``).
    """
    if track_id is not None:
        where, params = "t.id = %s", [use, track_id]
    else:
        # By public id, scoped to the owner: another artist's track is absent.
        where, params = (
            "t.public_id = %s AND t.artist_id = %s",
            [
                use,
                public_id,
                owner_id,
            ],
        )
    sql = _LOCK_FOR_SET_SQL.format(where=where)
    if connection.features.has_select_for_update_of:
        sql += " FOR UPDATE OF t"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    (pk, public_id, artist_id, license_class, version, title, head, isrc, decision,
     eligible, default, rule, policy_number) = row  # fmt: skip
    locked = LockedTrack(
        pk, public_id, artist_id, license_class, version, head or GENESIS_HASH, isrc
    )
    locked.title = title
    return locked, (decision or "", bool(eligible)), default, rule, policy_number


def consent_set(
    *,
    track: Track | None = None,
    owner: User | None = None,
    public_id: str | None = None,
    use: str,
    state: str,
    actor: User | None,
    source: str,
    request_id: str = "",
    if_version: int | None = None,
) -> SetResult:
    """Set one track's decision for one use (``state`` may be ``default``).

    One transaction: locks the track row; writes nothing when the state is
    already set (a double click); raises ``ConsentLocked`` when the policy
    prohibits the use and ``VersionConflict`` when ``if_version`` is stale;
    otherwise bumps ``consent_version``, appends the ledger row, updates the
    decision and eligibility and writes the receipt (e-mailed after commit).

    Give ``track``, or ``owner`` and ``public_id``: then the track is found and
    locked in the same statement, and ``Track.DoesNotExist`` is raised when
    the owner has no such track (the switch of the list: one query fewer).
    """
    if use not in USE_ORDER:
        raise ConsentError(f"“{use}” is not a use.")
    change = {
        "track": track,
        "owner": owner,
        "public_id": public_id,
        "use": use,
        "new_decision": decision_of(state),
        "actor": actor,
        "source": source,
        "request_id": request_id,
        "if_version": if_version,
    }
    if connection.vendor == "postgresql":
        result = _consent_switch(**change)  # one statement: atomic by itself
    else:
        with transaction.atomic():
            result = _consent_set_locked(**change)
    if track is not None:
        track.consent_version = result.consent_version
    return result


def _version_conflict(version: int) -> VersionConflict:
    return VersionConflict(f"The track changed meanwhile (version {version}).")


def _consent_set_locked(
    *, track, owner, public_id, use, new_decision, actor, source, request_id,
    if_version,
) -> SetResult:  # fmt: skip
    """``consent_set`` as separate statements under the track's lock."""
    if track is not None:
        found = _lock_for_set(track_id=track.pk, use=use)
        if found is None:
            raise ConsentError("This track no longer exists.")
    else:
        found = _lock_for_set(use=use, public_id=public_id, owner_id=owner.pk)
        if found is None:
            raise Track.DoesNotExist(public_id)
    locked, current, default, rule, policy_number = found
    if if_version is not None and if_version != locked.consent_version:
        raise _version_conflict(locked.consent_version)
    policy = Policy(number=policy_number, rules={})
    unchanged = SetResult(
        changed=False,
        consent_version=locked.consent_version,
        decision=current[0],
        eligible=current[1],
        rule=rule,
        default=default,
        track=locked,
    )
    if current[0] == new_decision:
        return unchanged
    if rule == Rule.PROHIBITED:
        raise ConsentLocked("The policy does not allow this use of this track.")
    change = Change(
        track_id=locked.id,
        public_id=locked.public_id,
        use=use,
        old_decision=current[0],
        new_decision=new_decision,
        old_eligible=current[1],
        new_eligible=is_eligible(rule, new_decision, default),
    )
    now = timezone.now()
    tracks = {locked.id: locked}
    written = _write_changes(
        changes=[change],
        tracks=tracks,
        actor_id=actor.pk if actor else None,
        source=source,
        request_id=request_id,
        policy_version=policy.number,
        now=now,
    )
    receipt = _receipt_create(
        artist_id=locked.artist_id,
        entries=written.entries,
        tracks=tracks,
        method=source,
        policy=policy,
        now=now,
    )
    return SetResult(
        changed=True,
        consent_version=locked.consent_version,
        decision=change.new_decision,
        eligible=change.new_eligible,
        rule=rule,
        default=default,
        entry=written.entries[0],
        receipt=receipt,
        track=locked,
    )


# Where ``consent_switch()`` puts the values it reads under the lock into the
# ledger row's canonical encoding and the receipt (``format()`` positions).
_SWITCH_SLOTS = (
    "consent_version",
    "old_state",
    "old_eligible",
    "new_eligible",
    "policy_version",
    "isrc",
    "entry_hash",
)  # the order of the unpacking in ``_switch_skeleton``

# What a request fills into a skeleton (``_switch_templates``).
_SWITCH_NAMES = (
    "track",
    "actor",
    "request",
    "created",
    "receipt",
    "principal",
    "consentTimestamp",
    "timestamp",
)


# The time a skeleton's ledger row is encoded with (then replaced by a name).
_SKELETON_TIME = datetime(2099, 12, 31, 23, 59, 58, 987654, tzinfo=UTC)


@functools.cache
def _eligible_when(new_decision: str) -> list[str]:
    """The ``rule:default`` pairs under which ``new_decision`` is eligible:
    ``is_eligible`` evaluated here, so the database function has no rule."""
    return [
        f"{rule}:{default}"
        for rule in Rule.values
        for default in ("", *Decision.values)
        if is_eligible(rule, new_decision, default or None)
    ]


@dataclass(slots=True)
class _ReceiptHead:
    """What ``receipt_payload`` reads of a receipt, before the row exists."""

    public_id: object
    artist_id: object
    created_at: datetime


@functools.lru_cache(maxsize=256)
def _switch_skeleton(
    use: str, new_decision: str, source: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The ledger row's canonical encoding and the receipt JSON of a switch,
    built once per (use, answer, source) by the same ``canonical`` and
    ``receipt_payload`` as every other write, in pieces: literal text at even
    positions, at odd positions the name of a value the request fills in
    (``_switch_templates``). The literal text has ``format()`` slots
    (``_SWITCH_SLOTS``) for what only the lock can tell.

    Each unknown value is a random token (fresh per skeleton, so no constant
    text can collide with one), then its JSON form is replaced by its slot or
    its name.
    """
    token = secrets.token_hex(8)
    slot = [f"{token}-{position}" for position in range(len(_SWITCH_SLOTS))]
    (consent_version, old_state, old_eligible, new_eligible, policy_version, isrc,
     entry_hash) = slot  # fmt: skip
    named = {name: f"{token}-{name}" for name in _SWITCH_NAMES}
    row = LedgerRow(
        track_id=0,
        consent_version=consent_version,
        use=use,
        old_state=old_state,
        new_state=state_of(new_decision),
        old_eligible=old_eligible,
        new_eligible=new_eligible,
        actor_id=named["actor"],
        source=source,
        created_at=_SKELETON_TIME,
        policy_version=policy_version,
        request_id=named["request"],
        note="",
        prev_hash="",
        entry_hash=entry_hash,
    )
    entry = canonical(track_public_id=named["track"], **encoded_fields(row)).decode()
    payload = receipt_payload(
        receipt=_ReceiptHead(named["receipt"], named["principal"], _SKELETON_TIME),
        entries=[row],
        tracks={0: LockedTrack(0, named["track"], 0, "", 0, "", isrc)},
        method=source,
        policy=Policy(number=policy_version, rules={}),
    )
    for name in receipt_times(_SKELETON_TIME):  # where the receipt's times go
        payload[name] = named[name]
    receipt_json = json.dumps(payload, ensure_ascii=False)
    # The row's time is encoded by ``canonical`` itself: its one quoted
    # encoding (the row holds only fixed words and tokens besides) is a name.
    created = json.dumps(encode_timestamp(_SKELETON_TIME))
    if entry.count(created) != 1:
        raise RuntimeError("The ledger row's time is not where it was expected.")
    entry = entry.replace(created, f'"{named["created"]}"')

    def pieces(text: str) -> tuple[str, ...]:
        text = text.replace("%", "%%")
        for position, value in enumerate(slot, start=1):
            # A token is plain ASCII: its JSON form is itself in quotes.
            text = text.replace(f'"{value}"', f"%{position}$s")
        return tuple(re.split(f'"{token}-([A-Za-z]+)"', text))

    return pieces(entry), pieces(receipt_json)


@receiver(setting_changed)
def _skeletons_forget(*, setting: str, **kwargs) -> None:
    # A skeleton holds the receipt's settings (site, controller, ...): a test
    # that overrides one gets receipts with its values.
    if setting.startswith("REFRAIN_"):
        _switch_skeleton.cache_clear()


def _switch_templates(
    *,
    public_id: str,
    artist_id: int,
    use: str,
    new_decision: str,
    actor_id: int | None,
    source: str,
    request_id: str,
    now: datetime,
    receipt_id: uuid.UUID,
) -> tuple[str, str]:
    """The ledger row's canonical encoding and the receipt JSON of this
    switch, with ``format()`` slots (``_SWITCH_SLOTS``) for what only the
    lock can tell: its skeleton with this request's values filled in."""
    entry, receipt = _switch_skeleton(use, new_decision, source)
    encoded = {
        "track": json.dumps(public_id, ensure_ascii=False),
        "actor": json.dumps(actor_id),
        "request": json.dumps(request_id, ensure_ascii=False),
        "created": json.dumps(encode_timestamp(now)),
        "receipt": json.dumps(str(receipt_id)),
        "principal": json.dumps(str(artist_id)),
        **{name: json.dumps(value) for name, value in receipt_times(now).items()},
    }
    values = {name: value.replace("%", "%%") for name, value in encoded.items()}

    def filled(pieces: tuple[str, ...]) -> str:
        text = list(pieces)
        text[1::2] = [values[name] for name in pieces[1::2]]
        return "".join(text)

    return filled(entry), filled(receipt)


_SWITCH_SQL = (
    "SELECT * FROM consent_switch(%s::bigint, %s::text, %s::bigint, %s::text, "
    "%s::text, %s::bigint, %s::text[], %s::bigint, %s::text, %s::text, "
    "%s::timestamptz, %s::boolean, %s::text, %s::uuid, %s::text)"
)


@functools.cache
def _prepared_cursor_class():
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparedCursor(ServerBindingCursor):
        def execute(self, query, params=None, **kwargs):
            # Prepared unless the connection's ``prepare_threshold`` is None.
            return super().execute(query, params, prepare=True)

    return PreparedCursor


def _prepared_cursor(conn):
    """A Django cursor on ``conn`` whose statements are bound and prepared by
    the server.

    For the switch only: its two templates are kilobytes of text that a
    client-side cursor would quote into the SQL and the server would parse
    and plan on every call; prepared once per connection, a call sends just
    the values (``REFRAIN_DB_PREPARED_STATEMENTS``, see the settings). The
    underlying cursor is kept for the connection's life (a client-side
    object: nothing stays open on the server), so do not close it.
    """
    # What Django's ``connection.cursor()`` does before handing out a cursor.
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    conn.validate_thread_sharing()
    raw = conn.__dict__.get("_refrain_switch_cursor")
    if (
        raw is None
        or raw.closed
        or raw.connection is not conn.connection
        or conn.allow_thread_sharing  # threads on one connection: one cursor each
    ):
        with conn.wrap_database_errors:
            raw = _prepared_cursor_class()(conn.connection)
        conn._refrain_switch_cursor = raw
    if conn.queries_logged:
        return conn.make_debug_cursor(raw)
    return conn.make_cursor(raw)


def _consent_switch(
    *, track, owner, public_id, use, new_decision, actor, source, request_id,
    if_version,
) -> SetResult:  # fmt: skip
    """``consent_set`` on PostgreSQL: one call of ``consent_switch()``
    (migration 0009), which locks, checks and writes in one statement, so
    it is atomic by itself and costs one round trip (no BEGIN/COMMIT of its
    own outside a transaction)."""
    now = timezone.now()
    receipt_public_id = uuid.uuid4()
    actor_id = actor.pk if actor else None
    entry_template, receipt_template = _switch_templates(
        public_id=track.public_id if track is not None else public_id,
        artist_id=track.artist_id if track is not None else owner.pk,
        use=use,
        new_decision=new_decision,
        actor_id=actor_id,
        source=source,
        request_id=request_id,
        now=now,
        receipt_id=receipt_public_id,
    )
    conn = connections[DEFAULT_DB_ALIAS]
    cursor = _prepared_cursor(conn)
    cursor.execute(
        _SWITCH_SQL,
        [
            track.pk if track is not None else None,
            public_id if track is None else None,
            owner.pk if track is None else None,
            use,
            new_decision,
            if_version,
            _eligible_when(new_decision),
            actor_id,
            source,
            request_id,
            now,
            source != Source.POLICY,
            entry_template,
            receipt_public_id,
            receipt_template,
        ],
    )
    (outcome, track_id, found_public_id, title, artist_id, license_class, isrc,
     version, old_decision, old_eligible, new_eligible, default, rule,
     policy_version, prev_hash, entry_hash, entry_id,
     receipt_id) = cursor.fetchone()  # fmt: skip
    if outcome == "missing":
        if track is not None:
            raise ConsentError("This track no longer exists.")
        raise Track.DoesNotExist(public_id)
    if outcome == "conflict":
        raise _version_conflict(version)
    if outcome == "locked":
        raise ConsentLocked("The policy does not allow this use of this track.")
    locked = LockedTrack(
        track_id, found_public_id, artist_id, license_class, version, "", isrc
    )
    locked.title = title
    if outcome == "unchanged":
        return SetResult(
            changed=False,
            consent_version=version,
            decision=old_decision,
            eligible=old_eligible,
            rule=rule,
            default=default,
            track=locked,
        )
    locked.head_hash = entry_hash
    entry = LedgerEntry.from_db(
        conn.alias,
        ["id", *LEDGER_COLUMNS],
        [
            entry_id,
            track_id,
            version,
            use,
            state_of(old_decision),
            state_of(new_decision),
            old_eligible,
            new_eligible,
            actor_id,
            source,
            now,
            policy_version,
            request_id,
            "",
            prev_hash,
            entry_hash,
        ],
    )
    # The payload was completed in the database: loaded when first read.
    receipt = Receipt.from_db(
        conn.alias,
        ["id", "public_id", "artist_id", "created_at", "emailed_at"],
        [receipt_id, receipt_public_id, artist_id, now, None],
    )
    if settings.REFRAIN_RECEIPT_EMAILS == "immediate":
        transaction.on_commit(_ring_receipts_doorbell)
    return SetResult(
        changed=True,
        consent_version=version,
        decision=new_decision,
        eligible=new_eligible,
        rule=rule,
        default=default,
        entry=entry,
        receipt=receipt,
        track=locked,
    )


# --- Many tracks ---------------------------------------------------------------


@dataclass
class BulkOutcome:
    changed: int = 0
    unchanged: int = 0
    locked: int = 0
    entries: list[LedgerEntry] = field(default_factory=list)
    tracks: dict[int, LockedTrack] = field(default_factory=dict)


def consent_bulk_set_chunk(
    *,
    artist: User,
    track_ids: list[int],
    use: str,
    state: str,
    actor: User | None,
    source: str,
    request_id: str,
    policy: Policy | None = None,
) -> BulkOutcome:
    """Set one use on a chunk of the artist's tracks, in one transaction.

    Tracks of other artists are ignored (never touched, not counted); tracks
    whose use the policy prohibits are counted as ``locked`` and untouched.
    Idempotent: a track already in the state counts as ``unchanged``.
    """
    if use not in USE_ORDER:
        raise ConsentError(f"“{use}” is not a use.")
    new_decision = decision_of(state)
    outcome = BulkOutcome()
    with transaction.atomic():
        policy = policy or policy_current()
        tracks = _lock_tracks(track_ids, artist_id=artist.pk)
        current, eligible_now = {}, {}
        for track_id, decision, eligible in TrackConsent.objects.filter(
            track_id__in=tracks.keys(), use=use
        ).values_list("track_id", "decision", "eligible"):
            current[track_id] = decision
            eligible_now[track_id] = eligible
        default = _defaults_for([artist.pk]).get((artist.pk, use))
        changes = []
        for track in tracks.values():
            rule = policy.rule(track.license_class, use)
            if rule == Rule.PROHIBITED:
                outcome.locked += 1
                continue
            if current.get(track.id, "") == new_decision:
                outcome.unchanged += 1
                continue
            changes.append(
                Change(
                    track_id=track.id,
                    public_id=track.public_id,
                    use=use,
                    old_decision=current.get(track.id, ""),
                    new_decision=new_decision,
                    old_eligible=eligible_now.get(track.id, False),
                    new_eligible=is_eligible(rule, new_decision, default),
                )
            )
        written = _write_changes(
            changes=changes,
            tracks=tracks,
            actor_id=actor.pk if actor else None,
            source=source,
            request_id=request_id,
            policy_version=policy.number,
            now=timezone.now(),
        )
    outcome.changed = len(changes)
    outcome.entries = written.entries
    outcome.tracks = {tid: tracks[tid] for tid in written.versions}
    return outcome


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
        return _receipt_create(
            artist_id=artist.pk,
            entries=entries,
            tracks=tracks,
            method=method,
            policy=policy_current(),
            now=timezone.now(),
        )


def new_request_id() -> str:
    return secrets.token_hex(12)


# --- Re-evaluation (policy, defaults, licence class) ---------------------------


@dataclass
class RefreshOutcome:
    tracks: int = 0
    changed_rows: int = 0
    artists: set[int] = field(default_factory=set)


def eligibility_refresh(
    *,
    track_ids: list[int],
    source: str,
    actor: User | None,
    note: str,
    request_id: str = "",
    policy: Policy | None = None,
    apply_defaults_for: dict[tuple[int, str], str | None] | None = None,
) -> RefreshOutcome:
    """Recompute stored eligibility of these tracks and log every change.

    One transaction for the given ids (callers pass batches). Decisions are
    untouched; a row whose eligibility changes gets a ledger entry with the
    given source and note. ``policy`` defaults to the current one.
    """
    outcome = RefreshOutcome()
    with transaction.atomic():
        policy = policy or policy_current()
        tracks = _lock_tracks(track_ids)
        if not tracks:
            return outcome
        condition, params = _id_condition("track_id", list(tracks))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT track_id, use, decision, eligible, license_class "
                f"FROM {TrackConsent._meta.db_table} WHERE {condition} "
                "ORDER BY track_id, use",
                params,
            )
            rows = cursor.fetchall()
        defaults = _defaults_for({t.artist_id for t in tracks.values()})
        changes = []
        stale_class = []
        for track_id, use, decision, eligible, copied_class in rows:
            track = tracks[track_id]
            if copied_class != track.license_class:
                stale_class.append(track_id)
            rule = policy.rule(track.license_class, use)
            new_eligible = is_eligible(
                rule, decision, defaults.get((track.artist_id, use))
            )
            if new_eligible != eligible:
                changes.append(
                    Change(
                        track_id=track_id,
                        public_id=track.public_id,
                        use=use,
                        old_decision=decision,
                        new_decision=decision,
                        old_eligible=eligible,
                        new_eligible=new_eligible,
                        note=note,
                    )
                )
                outcome.artists.add(track.artist_id)
        if stale_class:
            for track_id in set(stale_class):
                TrackConsent.objects.filter(track_id=track_id).update(
                    license_class=tracks[track_id].license_class
                )
        _write_changes(
            changes=changes,
            tracks=tracks,
            actor_id=actor.pk if actor else None,
            source=source,
            request_id=request_id,
            policy_version=policy.number,
            now=timezone.now(),
        )
    outcome.tracks = len(tracks)
    outcome.changed_rows = len(changes)
    return outcome


def trackconsent_create_missing(
    *, track_ids: list[int] | None = None, source: str = Source.UPLOAD
) -> int:
    """Give every track (or these) its one row per use, set-based.

    New rows start on the artist's default; those that start eligible (an
    explicit default of ``granted`` or an opt-out rule) are then logged by
    ``eligibility_refresh``. Returns the number of rows created.
    """
    table = TrackConsent._meta.db_table
    track_table = Track._meta.db_table
    now = timezone.now()
    uses = ", ".join(["(%s)"] * len(USE_ORDER))
    where = ""
    params: list = [*USE_ORDER, now]
    if track_ids is not None:
        if not track_ids:
            return 0
        where = f"AND t.id IN ({', '.join(['%s'] * len(track_ids))})"
        params += list(track_ids)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"WITH u(use) AS (VALUES {uses}) "
            f"INSERT INTO {table} "
            "(track_id, use, decision, eligible, artist_id, license_class, "
            "updated_at) "
            f"SELECT t.id, u.use, '', FALSE, t.artist_id, t.license_class, %s "
            f"FROM {track_table} t CROSS JOIN u "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} x "
            f"WHERE x.track_id = t.id AND x.use = u.use) {where}",
            params,
        )
        created = cursor.rowcount
        if created < 0:  # SQLite reports -1 for WITH … INSERT; ask it instead
            cursor.execute("SELECT changes()")
            created = cursor.fetchone()[0]
    # Rows that the rules make eligible from the start (opt-out, or a default
    # of yes) are corrected and logged, so the ledger explains them.
    candidates = _tracks_that_may_start_eligible(track_ids)
    for start in range(0, len(candidates), 2000):
        eligibility_refresh(
            track_ids=candidates[start : start + 2000],
            source=source,
            actor=None,
            note="new track: the rules make it eligible",
        )
    return created


# Secondary indexes of consent rows, rebuilt after a bulk load instead of
# being maintained row by row (the unique (track, use) index stays).
_BULK_LOAD_INDEXES = (
    "consent_tc_artist_decision",
    "consent_tc_artist_eligible",
    "consent_tc_class_eligible",
    "consent_tc_artist_changed",
)


def trackconsent_bulk_load(*, artist_ids: list[int]) -> int:
    """Create the consent rows of freshly generated artists' tracks, fast.

    For ``seed_demo --artists`` (benchmark catalogues) on PostgreSQL: one
    transaction drops the secondary indexes, inserts four rows per track of
    these artists (they have none yet) and recreates the indexes from their
    saved definitions, which is several times faster than maintaining them
    row by row for millions of rows. Elsewhere, ``trackconsent_create_missing``.
    """
    if connection.vendor != "postgresql":
        return trackconsent_create_missing(track_ids=None, source=Source.IMPORT)
    table = TrackConsent._meta.db_table
    uses = ", ".join(["(%s)"] * len(USE_ORDER))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename = %s AND indexname = ANY(%s)",
            [table, list(_BULK_LOAD_INDEXES)],
        )
        definitions = cursor.fetchall()
        for name, _ in definitions:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute(
            f"WITH u(use) AS (VALUES {uses}) INSERT INTO {table} "
            "(track_id, use, decision, eligible, artist_id, license_class, "
            "updated_at) SELECT t.id, u.use, '', FALSE, t.artist_id, "
            "t.license_class, %s FROM catalog_track t CROSS JOIN u "
            "WHERE t.artist_id = ANY(%s)",
            [*USE_ORDER, timezone.now(), list(artist_ids)],
        )
        created = cursor.rowcount
        # Check the deferred foreign keys now: an index cannot be built on a
        # table with pending constraint-trigger events.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for _, definition in definitions:
            cursor.execute(definition)
    candidates = _tracks_that_may_start_eligible(None)
    for start in range(0, len(candidates), 2000):
        eligibility_refresh(
            track_ids=candidates[start : start + 2000],
            source=Source.IMPORT,
            actor=None,
            note="new track: the rules make it eligible",
        )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")
    return created


def _tracks_that_may_start_eligible(track_ids: list[int] | None) -> list[int]:
    policy = policy_current()
    open_classes = {
        license_class
        for (license_class, _), rule in policy.rules.items()
        if rule == Rule.OPT_OUT
    }
    granting_artists = ArtistDefault.objects.filter(decision=Decision.GRANTED).values(
        "artist_id"
    )
    rows = TrackConsent.objects.filter(eligible=False, decision="")
    if track_ids is not None:
        rows = rows.filter(track_id__in=track_ids)
    rows = rows.filter(
        Q(license_class__in=open_classes) | Q(artist_id__in=granting_artists)
    )
    return sorted(set(rows.values_list("track_id", flat=True)))


# --- Track creation and licence class (the consent side of catalog writes) -----


def tracks_upload(*, artist: User, uploads: list) -> list[Track]:
    """Store uploaded audio as tracks that start on the artist's defaults.

    One transaction around the catalogue write and the consent rows; on any
    failure the stored files are removed by the catalogue service.
    """
    from catalog import services as catalog_services

    with transaction.atomic():
        tracks = catalog_services.tracks_upload(artist=artist, uploads=uploads)
        trackconsent_create_missing(
            track_ids=[track.pk for track in tracks], source=Source.UPLOAD
        )
    return tracks


def catalog_import(*, rows, **options):
    """The catalogue import, with every new track given its consent rows and
    every reclassified track re-evaluated, inside each batch's transaction."""
    from catalog import services as catalog_services

    def after_batch_write(*, created_isrcs, reclassified_track_ids):
        if created_isrcs:
            created = list(
                Track.objects.filter(isrc__in=created_isrcs).values_list(
                    "pk", flat=True
                )
            )
            trackconsent_create_missing(track_ids=created, source=Source.IMPORT)
        if reclassified_track_ids:
            eligibility_refresh(
                track_ids=reclassified_track_ids,
                source=Source.IMPORT,
                actor=None,
                note="licence class changed by the catalogue import",
            )

    return catalog_services.catalog_import(
        rows=rows, after_batch_write=after_batch_write, **options
    )


def track_license_class_set(
    *, track: Track, license_class: str, label, actor: User | None, source: str
) -> bool:
    """Move a track between independent and label-licensed and re-evaluate its
    eligibility in the same transaction (ledger rows for what changes)."""
    from catalog import services as catalog_services

    with transaction.atomic():
        changed = catalog_services.track_change_license_class(
            track=track, license_class=license_class, label=label
        )
        if changed:
            eligibility_refresh(
                track_ids=[track.pk],
                source=source,
                actor=actor,
                note=f"licence class is now {license_class}",
            )
    return changed


# --- Receipts by e-mail ----------------------------------------------------------


def receipt_email_send(*, receipt_id: int) -> bool:
    """E-mail one receipt; idempotent (sends nothing when already sent)."""
    from django.core.mail import EmailMessage
    from django.template.loader import render_to_string

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
    from django.core.mail import EmailMessage
    from django.template.loader import render_to_string

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
    import json

    return json.dumps(payload, indent=2, ensure_ascii=False).encode()


# --- Defaults --------------------------------------------------------------------


@dataclass
class DefaultsOutcome:
    changed_uses: list[str] = field(default_factory=list)
    tracks_following: int = 0
    tracks_kept: int = 0
    receipt: Receipt | None = None


def defaults_set(
    *,
    artist: User,
    defaults: dict[str, str],
    apply_to_existing: bool,
    actor: User | None,
    request_id: str = "",
) -> DefaultsOutcome:
    """Change the artist's default answer per use.

    Tracks with no decision follow the default. With ``apply_to_existing`` the
    tracks still on default follow the new one (their eligibility is
    re-evaluated and logged); without it, they are first pinned to the answer
    they had (an explicit decision equal to the previous default, ``denied``
    when there was none), so only tracks uploaded later take the new default.
    """
    outcome = DefaultsOutcome()
    request_id = request_id or new_request_id()
    previous = {
        use: decision for (_, use), decision in _defaults_for([artist.pk]).items()
    }
    for use, decision in defaults.items():
        if use not in USE_ORDER:
            raise ConsentError(f"“{use}” is not a use.")
        if decision not in ("", *Decision.values):
            raise ConsentError(f"“{decision}” is not granted, denied or not set.")
    changed = [
        use
        for use in USE_ORDER
        if use in defaults and (defaults[use] or None) != previous.get(use)
    ]
    outcome.changed_uses = changed
    if not changed:
        return outcome
    on_default = list(
        TrackConsent.objects.filter(
            artist=artist, use__in=changed, decision=""
        ).values_list("track_id", "use")
    )
    if not apply_to_existing:
        for use in changed:
            keep = previous.get(use) or Decision.DENIED
            ids = [track_id for track_id, u in on_default if u == use]
            for start in range(0, len(ids), 2000):
                result = consent_bulk_set_chunk(
                    artist=artist,
                    track_ids=ids[start : start + 2000],
                    use=use,
                    state=keep,
                    actor=actor,
                    source=Source.WEB,
                    request_id=request_id,
                )
                outcome.tracks_kept += result.changed
    with transaction.atomic():
        now = timezone.now()
        for use in changed:
            if defaults[use]:
                ArtistDefault.objects.update_or_create(
                    artist=artist,
                    use=use,
                    defaults={"decision": defaults[use], "updated_at": now},
                )
            else:
                ArtistDefault.objects.filter(artist=artist, use=use).delete()
    if apply_to_existing:
        ids = sorted({track_id for track_id, _ in on_default})
        for start in range(0, len(ids), 2000):
            result = eligibility_refresh(
                track_ids=ids[start : start + 2000],
                source=Source.WEB,
                actor=actor,
                note="follows your new default",
                request_id=request_id,
            )
            outcome.tracks_following += result.changed_rows
    if outcome.tracks_kept or outcome.tracks_following:
        # One receipt for every track this change of defaults touched.
        outcome.receipt = receipt_for_request(
            artist=artist, request_id=request_id, method=Source.WEB
        )
    return outcome


# --- Policy ----------------------------------------------------------------------


def policy_preview(*, rules: dict[tuple[str, str], str]) -> dict[tuple[str, str], dict]:
    """How many tracks per (class, use) would change eligibility under ``rules``.

    Set-based counts over the stored rows (read-only). Returns, for each pair
    whose rule changes, ``{"old": rule, "new": rule, "gain": n, "lose": n}``.
    """
    current = policy_current()
    table = TrackConsent._meta.db_table
    defaults_table = ArtistDefault._meta.db_table
    preview = {}
    for (license_class, use), new_rule in sorted(rules.items()):
        old_rule = current.rules.get((license_class, use))
        if old_rule == new_rule:
            continue
        answer = "COALESCE(NULLIF(tc.decision, ''), d.decision)"  # NULL: silent
        if new_rule == Rule.PROHIBITED:
            new_expr = "FALSE"
        elif new_rule == Rule.OPT_IN:
            new_expr = f"COALESCE({answer} = 'granted', FALSE)"
        else:
            new_expr = f"COALESCE({answer} <> 'denied', TRUE)"
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT "
                f"SUM(CASE WHEN NOT tc.eligible AND {new_expr} THEN 1 ELSE 0 END), "
                f"SUM(CASE WHEN tc.eligible AND NOT {new_expr} THEN 1 ELSE 0 END) "
                f"FROM {table} tc LEFT JOIN {defaults_table} d "
                f"ON d.artist_id = tc.artist_id AND d.use = tc.use "
                f"WHERE tc.license_class = %s AND tc.use = %s",
                [license_class, use],
            )
            gain, lose = cursor.fetchone()
        preview[(license_class, use)] = {
            "old": old_rule,
            "new": new_rule,
            "gain": int(gain or 0),
            "lose": int(lose or 0),
        }
    return preview


def policy_publish(
    *, rules: dict[tuple[str, str], str], actor: User, reason: str
) -> PolicyVersion:
    """Save ``rules`` as the next policy version and start re-evaluation.

    From the commit on, every consent change uses the new rules; the stored
    eligibility of existing tracks is brought in line in the background
    (``policy_apply``), batch by batch, each batch logged with source
    ``policy``. Every (class, use) pair must be given.
    """
    expected = {(c, u) for c in ("independent", "label") for u in USE_ORDER}
    if set(rules) != expected:
        raise ConsentError("Give a rule for every licence class and use.")
    if any(rule not in Rule.values for rule in rules.values()):
        raise ConsentError("Each rule must be opt_in, opt_out or prohibited.")
    if not reason.strip():
        raise ConsentError("Say why the policy changes: artists will read it.")
    with transaction.atomic():
        # Serialise publishers: the latest version row is locked while the next
        # number is taken.
        latest = PolicyVersion.objects.select_for_update().order_by("-number").first()
        version = PolicyVersion.objects.create(
            number=(latest.number if latest else 0) + 1,
            created_by=actor,
            reason=reason.strip(),
        )
        PolicyRule.objects.bulk_create(
            [
                PolicyRule(version=version, license_class=c, use=u, rule=rule)
                for (c, u), rule in sorted(rules.items())
            ]
        )
        from consent.tasks import apply_policy as apply_policy_task

        transaction.on_commit(lambda: apply_policy_task.delay(version.pk))
    return version


@dataclass
class PolicyApplyProgress:
    tracks: int = 0
    changed_rows: int = 0
    done: bool = False


def policy_apply(
    *, version_id: int, batch_size: int = 5000, max_batches: int | None = None
) -> PolicyApplyProgress:
    """Re-evaluate every track against policy version ``version_id``.

    Walks tracks by id from the version's saved cursor, one transaction per
    batch (locks only that batch), saving the cursor after each, so memory is
    flat and a crashed worker resumes where it stopped. When done, marks the
    version applied and e-mails each affected artist one summary (after
    commit). Stops early, without marking, if a newer version exists (that
    one's run covers everything).
    """
    progress = PolicyApplyProgress()
    version = PolicyVersion.objects.get(pk=version_id)
    if version.applied_at is not None:
        progress.done = True
        return progress
    cursor = version.applied_through_track_id
    batches = 0
    while max_batches is None or batches < max_batches:
        if PolicyVersion.objects.filter(number__gt=version.number).exists():
            # Superseded: the newer version's run re-evaluates every track.
            PolicyVersion.objects.filter(pk=version.pk, applied_at__isnull=True).update(
                applied_at=timezone.now()
            )
            progress.done = True
            return progress
        ids = list(
            Track.objects.filter(pk__gt=cursor)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            break
        with transaction.atomic():
            outcome = eligibility_refresh(
                track_ids=ids,
                source=Source.POLICY,
                actor=version.created_by,
                note=f"policy v{version.number}: {version.reason[:150]}",
                request_id=f"policy-{version.number}",
            )
            PolicyVersion.objects.filter(pk=version.pk).update(
                applied_through_track_id=ids[-1]
            )
        cursor = ids[-1]
        progress.tracks += len(ids)
        progress.changed_rows += outcome.changed_rows
        batches += 1
    else:
        return progress
    with transaction.atomic():
        PolicyVersion.objects.filter(pk=version.pk).update(applied_at=timezone.now())
        from consent.tasks import notify_policy_change as notify_task

        transaction.on_commit(lambda: notify_task.delay(version.pk))
    progress.done = True
    return progress


def policy_notify_artists(*, version_id: int) -> int:
    """E-mail each artist whose tracks changed under this version one summary.

    Idempotent per artist through ``PolicyNotice`` rows.
    """
    from django.core.mail import send_mail
    from django.template.loader import render_to_string

    version = PolicyVersion.objects.get(pk=version_id)
    counts = (
        LedgerEntry.objects.filter(
            source=Source.POLICY, request_id=f"policy-{version.number}"
        )
        .values("track__artist_id", "use", "new_eligible")
        .order_by()
    )
    summary: dict[int, dict] = {}
    for row in counts.iterator(chunk_size=5000):
        per_artist = summary.setdefault(row["track__artist_id"], {})
        key = (row["use"], row["new_eligible"])
        per_artist[key] = per_artist.get(key, 0) + 1
    sent = 0
    for artist_id, changes in sorted(summary.items()):
        _, created = PolicyNotice.objects.get_or_create(
            version=version, artist_id=artist_id
        )
        if not created:
            continue
        artist = User.objects.get(pk=artist_id)
        lines = [
            {
                "use": USES_BY_SLUG[use].name,
                "count": count,
                "eligible": eligible,
            }
            for (use, eligible), count in sorted(changes.items())
        ]
        send_mail(
            subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}"
            "The platform's AI policy changed",
            message=render_to_string(
                "consent/email/policy_change.txt",
                {
                    "user": artist,
                    "version": version,
                    "lines": lines,
                    "site": settings.REFRAIN_SITE_URL.rstrip("/"),
                },
            ),
            from_email=None,
            recipient_list=[artist.email],
        )
        sent += 1
    return sent


def policy_versions_unapplied() -> list[int]:
    return list(
        PolicyVersion.objects.filter(applied_at__isnull=True)
        .order_by("number")
        .values_list("pk", flat=True)
    )


# --- Bulk changes ------------------------------------------------------------------


def _bulk_queryset(job: BulkJob):
    from catalog.selectors import TrackFilters, track_list_for_owner
    from consent.selectors import ConsentFilters

    if job.track_ids:
        return Track.objects.filter(artist_id=job.artist_id, pk__in=job.track_ids)
    filters = job.filters or {}
    queryset = track_list_for_owner(
        owner=job.artist,
        filters=TrackFilters(
            q=filters.get("q", ""), license=filters.get("license", "")
        ),
    )
    extra = ConsentFilters(
        use=filters.get("use", ""),
        state=filters.get("state", ""),
        eligible=filters.get("eligible", ""),
    ).as_q()
    if extra is not None:
        queryset = queryset.filter(extra)
    return queryset


def bulk_change_start(
    *,
    artist: User,
    use: str,
    state: str,
    actor: User | None,
    track_public_ids: list[str] | None = None,
    filters: dict | None = None,
) -> BulkJob:
    """Start a bulk change of one use on chosen tracks or on all that match.

    Only the artist's own tracks are considered. Up to
    ``REFRAIN_BULK_INLINE_LIMIT`` tracks are changed before this returns; more
    run in a Celery task (the job's counters show progress). Either way one
    receipt covers the whole change.
    """
    if use not in USE_ORDER:
        raise ConsentError(f"“{use}” is not a use.")
    if state not in (Decision.GRANTED, Decision.DENIED, State.DEFAULT):
        raise ConsentError(f"“{state}” is not granted, denied or default.")
    job = BulkJob(
        artist=artist,
        use=use,
        state=state,
        request_id=f"bulk-{new_request_id()}",
        filters=filters or {},
    )
    if track_public_ids is not None:
        job.track_ids = list(
            Track.objects.filter(artist=artist, public_id__in=track_public_ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not job.track_ids:
            raise ConsentError("Choose at least one of your tracks.")
    job.total = _bulk_queryset(job).order_by().count()
    if job.total == 0:
        raise ConsentError("No tracks match, so nothing was changed.")
    job.save()
    if job.total <= settings.REFRAIN_BULK_INLINE_LIMIT:
        bulk_job_run(job_id=job.pk, actor=actor)
        job.refresh_from_db()
    else:
        from consent.tasks import run_bulk_change as run_bulk_change_task

        transaction.on_commit(lambda: run_bulk_change_task.delay(job.pk))
    return job


def bulk_job_run(*, job_id: int, actor: User | None = None, chunk: int = 2000) -> None:
    """Run a bulk job from its saved cursor to the end, then write its receipt.

    Each chunk is one transaction that changes the tracks and advances the
    job's cursor and counters together, so a crash and a redelivery neither
    skip nor double-count a track.
    """
    job = BulkJob.objects.select_related("artist").get(pk=job_id)
    if job.status == BulkJob.Status.DONE:
        return
    actor = actor or job.artist
    BulkJob.objects.filter(pk=job.pk).update(status=BulkJob.Status.RUNNING)
    # A run that starts from the beginning keeps what it wrote for the
    # receipt; a resumed one reads its ledger rows back instead.
    fresh = job.cursor == 0
    written: list = []
    written_tracks: dict[int, LockedTrack] = {}
    try:
        while True:
            if job.track_ids:
                # Explicit choice: the ids are in the job (sorted); the chunk
                # service still checks ownership.
                ids = [pk for pk in job.track_ids if pk > job.cursor][:chunk]
            else:
                ids = list(
                    _bulk_queryset(job)
                    .filter(pk__gt=job.cursor)
                    .order_by("pk")
                    .values_list("pk", flat=True)[:chunk]
                )
            if not ids:
                break
            with transaction.atomic():
                outcome = consent_bulk_set_chunk(
                    artist=job.artist,
                    track_ids=ids,
                    use=job.use,
                    state=job.state,
                    actor=actor,
                    source=Source.BULK,
                    request_id=job.request_id,
                )
                job.cursor = ids[-1]
                job.processed += len(ids)
                job.changed += outcome.changed
                job.unchanged += outcome.unchanged
                job.locked += outcome.locked
                job.save(
                    update_fields=[
                        "cursor",
                        "processed",
                        "changed",
                        "unchanged",
                        "locked",
                    ]
                )
            if fresh:
                written.extend(outcome.entries)
                written_tracks.update(outcome.tracks)
        if fresh and written:
            with transaction.atomic():
                receipt = _receipt_create(
                    artist_id=job.artist_id,
                    entries=written,
                    tracks=written_tracks,
                    method=Source.BULK,
                    policy=policy_current(),
                    now=timezone.now(),
                )
        else:
            receipt = receipt_for_request(
                artist=job.artist, request_id=job.request_id, method=Source.BULK
            )
        job.receipt = receipt
        job.status = BulkJob.Status.DONE
        job.finished_at = timezone.now()
        job.processed = max(job.processed, job.total)
        job.save(update_fields=["receipt", "status", "finished_at", "processed"])
    except Exception as error:
        BulkJob.objects.filter(pk=job.pk).update(
            status=BulkJob.Status.FAILED, error=str(error)[:500]
        )
        raise
