"""``consent_set`` on PostgreSQL: one call of the database function
``consent_switch()``, whose source is ``consent/sql/consent_switch_v3.sql``
(``SWITCH_FUNCTION``; installed by migration ``consent/0013``).

The busiest write of the product is one prepared statement: the function
locks the track, reads the decision, the default, the rule and the ledger
head after the lock, and writes the ledger row, the decision, eligibility,
the track's version and the receipt. It holds no rule of its own: the
eligibility table comes from ``consent.policy.is_eligible`` and the ledger
row's encoding and the receipt come from ``consent.ledger.canonical`` and
``consent.receipts.receipt_payload`` as text skeletons with slots for what
only the lock can tell: the track's version, states, eligibility, policy
version, ISRC, ledger hash and the receipt's principal (its artist).
"""

import functools
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.dispatch import receiver
from django.utils import timezone

from catalog.models import Track
from consent.ledger import (
    GENESIS_HASH,
    LEDGER_COLUMNS,
    LedgerRow,
    canonical,
    encode_timestamp,
    encoded_fields,
)
from consent.models import Decision, LedgerEntry, Receipt, Rule, Source
from consent.policy import Policy, is_eligible
from consent.prepared import prepared_cursor
from consent.propagation.outbox import propagation_ring
from consent.receipts import receipt_payload, receipt_times
from consent.services.receipt_outbox import (
    receipts_doorbell_wanted,
    ring_receipts_doorbell,
)
from consent.services.writes import (
    ConsentError,
    ConsentLocked,
    LockedTrack,
    SetResult,
    state_of,
    version_conflict,
)

# The versioned file of the function whose slots these templates fill (the
# last migration that installs one loads this file; tests compare the two).
SWITCH_FUNCTION = "consent_switch_v3"

_SWITCH_SLOTS = (
    "consent_version",
    "old_state",
    "old_eligible",
    "new_eligible",
    "policy_version",
    "isrc",
    "entry_hash",
    "principal",
)  # the order of the unpacking in ``_switch_skeleton``

# What a request fills into a skeleton (``_switch_templates``).
_SWITCH_NAMES = (
    "track",
    "actor",
    "request",
    "created",
    "receipt",
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
     entry_hash, principal) = slot  # fmt: skip
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
        receipt=_ReceiptHead(named["receipt"], principal, _SKELETON_TIME),
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


def consent_switch(
    *, track, owner, public_id, use, new_decision, actor, source, request_id,
    if_version,
) -> SetResult:  # fmt: skip
    """``consent_set`` on PostgreSQL: one call of ``consent_switch()``
    (``consent/sql/consent_switch_v3.sql``), which locks, checks and writes
    in one statement, so it is atomic by itself and costs one round trip (no
    BEGIN/COMMIT of its own outside a transaction). Whatever the lock reads
    (the artist above all: the track may have changed hands since ``track``
    was read) comes from the locked row, as on the Python path."""
    now = timezone.now()
    receipt_public_id = uuid.uuid4()
    actor_id = actor.pk if actor else None
    entry_template, receipt_template = _switch_templates(
        public_id=track.public_id if track is not None else public_id,
        use=use,
        new_decision=new_decision,
        actor_id=actor_id,
        source=source,
        request_id=request_id,
        now=now,
        receipt_id=receipt_public_id,
    )
    conn = connections[DEFAULT_DB_ALIAS]
    cursor = prepared_cursor(conn)
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
        raise version_conflict(version)
    if outcome == "locked":
        raise ConsentLocked("The policy does not allow this use of this track.")
    # The head the lock read (the function answers it whatever the outcome),
    # as the Python path's ``LockedTrack`` holds it.
    locked = LockedTrack(
        track_id,
        found_public_id,
        artist_id,
        license_class,
        version,
        prev_hash or GENESIS_HASH,
        isrc,
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
    transaction.on_commit(_ring_doorbells)
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


def _ring_doorbells() -> None:
    """After the switch's commit (the function wrote the receipt and the
    outbox row): one callback for both doorbells."""
    if receipts_doorbell_wanted():
        ring_receipts_doorbell()
    propagation_ring()
