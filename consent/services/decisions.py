"""One change of one track's decision for one use: ``consent_set``.

Two write paths with one meaning: on PostgreSQL one call of the database
function ``consent_switch()`` (``switch_postgres``); elsewhere the statements
below under the track's lock. ``tests/consent/test_switch_differential.py``
runs both on the same inputs and compares every row they write.
"""

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from catalog.models import Track
from consent.ledger import GENESIS_HASH
from consent.policy import Policy, is_eligible, is_locked
from consent.services.receipt_outbox import receipt_create
from consent.services.switch_postgres import consent_switch
from consent.services.writes import (
    Change,
    ConsentError,
    ConsentLocked,
    LockedTrack,
    SetResult,
    decision_of,
    version_conflict,
    write_changes,
)
from consent.uses import USE_ORDER

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


def switch_arguments(
    *, track, owner, public_id, use, state, actor, source, request_id, if_version
) -> dict:
    """What either write path of ``consent_set`` takes: the change checked
    (``ConsentError`` for an unknown use or state) and the state as a
    decision."""
    if use not in USE_ORDER:
        raise ConsentError(f"“{use}” is not a use.")
    return {
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
    change = switch_arguments(
        track=track,
        owner=owner,
        public_id=public_id,
        use=use,
        state=state,
        actor=actor,
        source=source,
        request_id=request_id,
        if_version=if_version,
    )
    if connection.vendor == "postgresql":
        result = consent_switch(**change)  # one statement: atomic by itself
    else:
        with transaction.atomic():
            result = _consent_set_locked(**change)
    if track is not None:
        track.consent_version = result.consent_version
    return result


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
        raise version_conflict(locked.consent_version)
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
    if is_locked(rule):
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
    written = write_changes(
        changes=[change],
        tracks=tracks,
        actor_id=actor.pk if actor else None,
        source=source,
        request_id=request_id,
        policy_version=policy.number,
        now=now,
    )
    receipt = receipt_create(
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
