"""The two write paths of ``consent_set`` are one: on the same inputs, the
PostgreSQL function (``switch_postgres.consent_switch``) and the statements
SQLite runs (``decisions._consent_set_locked``) write the same rows, byte for
byte, and answer the same.

Each case sets up a database, then runs each path in a transaction that is
rolled back, with the time and the receipt's public id frozen, and compares
every row of every table each path left changed (as PostgreSQL renders the
stored row, JSON payload included), their answers and their exceptions. Only
surrogate ids (of the new ledger row, receipt and link) may differ; the link
names its receipt by public id.
"""

import dataclasses
import json
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.apps import apps
from django.db import connection, transaction

from catalog.models import Track
from consent.ledger import GENESIS_HASH, LEDGER_COLUMNS, verify_chains
from consent.models import Source, TrackConsent
from consent.policy import policy_current
from consent.services import (
    ConsentError,
    ConsentLocked,
    VersionConflict,
    consent_set,
    defaults_set,
    policy_apply,
    policy_publish,
)
from consent.services.decisions import _consent_set_locked, switch_arguments
from consent.services.switch_postgres import consent_switch
from consent.services.writes import SetResult
from tests.factories import StaffFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

TRAINING, GENAI = "ai-training", "genai-training"
NOW = datetime(2026, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)
RECEIPT_PUBLIC_ID = uuid.UUID("0b5e7f3c-9a1d-4c2e-8f60-7d3a2b1c4e5f")
# What a switch writes when it changes something (one row each, or updated).
CHANGE_WRITES = {
    "catalog_track",
    "consent_trackconsent",
    "consent_ledgerentry",
    "consent_receipt",
    "consent_receipt_tracks",
    "consent_propagationchange",
}


# --- the two paths and what they leave ------------------------------------------


@dataclass(frozen=True)
class Run:
    """What one path did: its answer (or exception) and the rows it changed,
    per table: ``-`` the rows as they were, ``+`` as they are."""

    answer: dict
    written: dict[str, dict[str, list[str]]]


class _RollBack(Exception):
    pass


def _table_rows_sql() -> str:
    """Every row of every table, as PostgreSQL renders it (``to_jsonb``
    keeps text, times to the microsecond and stored JSON as they are), without
    its surrogate id; the receipt link names its receipt by public id."""
    tables = sorted(
        {model._meta.db_table for model in apps.get_models(include_auto_created=True)}
    )
    selects = [
        f"SELECT '{table}', (to_jsonb(t) - 'id')::text FROM {table} t"
        for table in tables
        if table != "consent_receipt_tracks"
    ]
    selects.append(
        "SELECT 'consent_receipt_tracks', (to_jsonb(l) - 'id' - 'receipt_id' "
        "|| jsonb_build_object('receipt', r.public_id))::text "
        "FROM consent_receipt_tracks l JOIN consent_receipt r ON r.id = l.receipt_id"
    )
    return " UNION ALL ".join(selects)


def snapshot() -> Counter:
    with connection.cursor() as cursor:
        cursor.execute(_table_rows_sql())
        return Counter(cursor.fetchall())


def written(before: Counter, after: Counter) -> dict[str, dict[str, list[str]]]:
    changed: dict[str, dict[str, list[str]]] = {}
    for sign, rows in (("-", before - after), ("+", after - before)):
        for (table, row), count in rows.items():
            side = changed.setdefault(table, {"-": [], "+": []})[sign]
            side.extend([row] * count)
    return {
        table: {sign: sorted(rows) for sign, rows in sides.items()}
        for table, sides in changed.items()
    }


def answer_of(result: SetResult) -> dict:
    """Every field of the answer; the new rows by their columns (read inside
    the transaction: the PostgreSQL path's receipt loads its payload then)."""
    answer = {
        field.name: getattr(result, field.name)
        for field in dataclasses.fields(SetResult)
        if field.name not in ("entry", "receipt", "track")
    }
    answer["track"] = dataclasses.asdict(result.track)
    if result.entry is not None:
        answer["entry"] = {name: getattr(result.entry, name) for name in LEDGER_COLUMNS}
    if result.receipt is not None:
        receipt = result.receipt
        answer["receipt"] = {
            "public_id": receipt.public_id,
            "artist_id": receipt.artist_id,
            "created_at": receipt.created_at,
            "emailed_at": receipt.emailed_at,
            "payload": receipt.payload,
        }
    return answer


def on_postgres(change: dict) -> SetResult:
    return consent_switch(**change)


def in_statements(change: dict) -> SetResult:
    # What ``consent_set`` runs on SQLite; FOR UPDATE OF t locks here.
    with transaction.atomic():
        return _consent_set_locked(**change)


def run(path, change: dict) -> Run:
    """``path`` on ``change`` in a transaction rolled back afterwards."""
    before = snapshot()
    try:
        with (
            transaction.atomic(),
            mock.patch("django.utils.timezone.now", return_value=NOW),
            # Both paths draw the receipt's public id from ``uuid.uuid4``.
            mock.patch("uuid.uuid4", return_value=RECEIPT_PUBLIC_ID),
        ):
            try:
                answer = answer_of(path(change))
            except (ConsentError, Track.DoesNotExist) as error:
                answer = {"raised": type(error), "message": str(error)}
            after = snapshot()
            assert verify_chains().breaks == []
            raise _RollBack
    except _RollBack:
        pass
    assert snapshot() == before
    return Run(answer, written(before, after))


def both_paths(
    *,
    state: str,
    track: Track | None = None,
    owner=None,
    public_id: str | None = None,
    use: str = TRAINING,
    actor=None,
    source: str = Source.WEB,
    request_id: str = "req-differential",
    if_version: int | None = None,
) -> Run:
    """Run both paths on one change (as ``consent_set`` gives it to them) and
    assert they did the same; return what they did."""
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
    postgres = run(on_postgres, change)
    statements = run(in_statements, change)
    for table in sorted(set(postgres.written) | set(statements.written)):
        assert postgres.written.get(table) == statements.written.get(table), table
    assert postgres.answer == statements.answer
    return postgres


def receipt_row(done: Run) -> dict:
    """The receipt a path wrote, as stored."""
    (row,) = done.written["consent_receipt"]["+"]
    return json.loads(row)


# --- fixtures -------------------------------------------------------------------


@pytest.fixture
def admin(db):
    return StaffFactory(is_superuser=True)


def publish_and_apply(rules_changed: dict, *, actor) -> None:
    version = policy_publish(
        rules={**policy_current().rules, **rules_changed}, actor=actor, reason="Test"
    )
    assert policy_apply(version_id=version.pk).done


def switch(track, state, *, use=TRAINING) -> None:
    """A change made before the one compared (on this database's path)."""
    consent_set(track=track, use=use, state=state, actor=track.artist, source="web")


# --- the cases ------------------------------------------------------------------


def test_grant(artist, make_track):
    # given a track with an ISRC, nothing decided
    track = make_track(artist=artist, isrc="QZRFN2600001")

    # when the artist grants a use, then both paths write the same
    done = both_paths(track=track, state="granted", actor=artist)

    # and what they wrote is one change: eligible under opt-in
    assert set(done.written) == CHANGE_WRITES
    assert done.answer["changed"] is True
    assert (done.answer["decision"], done.answer["eligible"]) == ("granted", True)
    assert done.answer["entry"]["prev_hash"] == GENESIS_HASH
    payload = done.answer["receipt"]["payload"]
    assert payload["services"][0]["purposes"][0]["tracks"][0]["isrc"] == (
        "QZRFN2600001"
    )


@pytest.mark.parametrize(
    ("before", "state"),
    [("granted", "denied"), ("granted", "default"), ("denied", "default")],
)
def test_deny_and_back_to_default(artist, make_track, before, state):
    # given a track already decided once (the ledger has a head)
    track = make_track(artist=artist)
    switch(track, before)

    # when it changes again, then both paths write the same
    done = both_paths(track=track, state=state, actor=artist)

    assert set(done.written) == CHANGE_WRITES
    assert done.answer["entry"]["consent_version"] == 2
    assert done.answer["entry"]["prev_hash"] != GENESIS_HASH


@pytest.mark.parametrize(("before", "state"), [("", "default"), ("granted", "granted")])
def test_the_same_state_again_writes_nothing(artist, make_track, before, state):
    # given a track whose decision is already the one asked for
    track = make_track(artist=artist)
    if before:
        switch(track, before)

    # when it is set again, then neither path writes anything
    done = both_paths(track=track, state=state, actor=artist)

    assert done.written == {}
    assert done.answer["changed"] is False
    assert done.answer["consent_version"] == (1 if before else 0)


def test_a_prohibited_use_is_locked(artist, make_track):
    # given a label-licensed track (prohibited by the shipped policy)
    track = make_track(artist=artist, signed=True)

    # when the artist grants a use, then both refuse alike and write nothing
    done = both_paths(track=track, state="granted", actor=artist)

    assert done.written == {}
    assert done.answer == {
        "raised": ConsentLocked,
        "message": "The policy does not allow this use of this track.",
    }


@pytest.mark.parametrize(("if_version", "conflict"), [(0, True), (1, False)])
def test_if_match(artist, make_track, if_version, conflict):
    # given a track at consent version 1
    track = make_track(artist=artist)
    switch(track, "granted")

    # when a change is made for a version the caller read
    done = both_paths(track=track, state="denied", actor=artist, if_version=if_version)

    # then a stale one conflicts on both paths, a current one changes
    if conflict:
        assert done.written == {}
        assert done.answer == {
            "raised": VersionConflict,
            "message": "The track changed meanwhile (version 1).",
        }
    else:
        assert set(done.written) == CHANGE_WRITES


def test_a_stale_track_object(artist, make_track):
    # given a track object read before another change bumped the version
    track = make_track(artist=artist)
    stale = Track.objects.get(pk=track.pk)
    switch(track, "granted", use=GENAI)
    assert stale.consent_version == 0

    # when it is switched through the stale object, then both paths chain
    # the new row to the head the lock read
    done = both_paths(track=stale, state="granted", actor=artist)

    assert done.answer["entry"]["consent_version"] == 2
    assert done.answer["entry"]["prev_hash"] != GENESIS_HASH


def test_a_track_that_changed_hands_after_it_was_read(artist, make_track):
    # given a track granted by its first artist, whose default is "denied",
    # read before it moved to an artist whose default is "granted"
    buyer = UserFactory()
    defaults_set(
        artist=artist, defaults={TRAINING: "denied"}, apply_to_existing=True, actor=None
    )
    defaults_set(
        artist=buyer, defaults={TRAINING: "granted"}, apply_to_existing=True, actor=None
    )
    track = make_track(artist=artist)
    switch(track, "granted")
    stale = Track.objects.get(pk=track.pk)
    Track.objects.filter(pk=track.pk).update(artist=buyer)
    TrackConsent.objects.filter(track=track).update(artist=buyer)

    # when staff set it back to default through the object read before
    done = both_paths(track=stale, state="default", actor=None, source=Source.ADMIN)

    # then both follow the locked row: the buyer's default decides, and the
    # receipt is the buyer's, in its row and in its payload
    assert done.answer["eligible"] is True
    assert done.answer["receipt"]["artist_id"] == buyer.pk
    assert done.answer["receipt"]["payload"]["piiPrincipalId"] == str(buyer.pk)
    stored = receipt_row(done)
    assert stored["artist_id"] == buyer.pk
    assert stored["payload"]["piiPrincipalId"] == str(buyer.pk)
    # and by the list, the buyer finds it and the first artist does not
    both_paths(owner=buyer, public_id=track.public_id, state="denied", actor=buyer)
    done = both_paths(
        owner=artist, public_id=track.public_id, state="denied", actor=artist
    )
    assert done.answer == {"raised": Track.DoesNotExist, "message": track.public_id}


def test_a_track_without_an_isrc(artist, make_track):
    track = make_track(artist=artist, isrc=None)

    done = both_paths(track=track, state="granted", actor=artist)

    payload = done.answer["receipt"]["payload"]
    assert payload["services"][0]["purposes"][0]["tracks"][0]["isrc"] is None


@pytest.mark.parametrize("default", ["", "granted", "denied"])
@pytest.mark.parametrize(
    ("before", "state"),
    [
        ("", "granted"),
        ("", "denied"),
        ("granted", "default"),
        ("denied", "default"),
        ("granted", "denied"),
    ],
)
def test_under_an_opt_out_rule_the_default_matters(
    artist, admin, make_track, default, before, state
):
    # given an opt-out rule and the artist's default (or none)
    publish_and_apply({("independent", TRAINING): "opt_out"}, actor=admin)
    if default:
        defaults_set(
            artist=artist,
            defaults={TRAINING: default},
            apply_to_existing=True,
            actor=artist,
        )
    track = make_track(artist=artist)
    if before:
        switch(track, before)

    # when the artist sets a state, then both paths write the same
    done = both_paths(track=track, state=state, actor=artist)

    answer = state if state != "default" else default
    assert done.answer["eligible"] is (answer != "denied")
    assert done.answer["default"] == (default or None)
    assert done.answer["entry"]["policy_version"] == 2


def test_the_list_switch(artist, make_track):
    # given an artist's track and another artist's
    track = make_track(artist=artist)
    other = make_track(artist=UserFactory())

    # when the list switches by owner and public id, both write the same
    done = both_paths(owner=artist, public_id=track.public_id, state="granted")
    assert set(done.written) == CHANGE_WRITES

    # and another artist's track is missing on both
    done = both_paths(owner=artist, public_id=other.public_id, state="granted")
    assert done.answer == {"raised": Track.DoesNotExist, "message": other.public_id}
    assert done.written == {}


def test_a_track_that_no_longer_exists(artist, make_track):
    track = make_track(artist=artist)
    Track.objects.filter(pk=track.pk).delete()

    done = both_paths(track=track, state="granted", actor=artist)

    assert done.answer == {
        "raised": ConsentError,
        "message": "This track no longer exists.",
    }


@pytest.mark.parametrize("source", Source.values)
def test_every_source_with_awkward_text(artist, make_track, settings, source):
    # given receipt settings and a request id holding quotes, backslashes,
    # format() slots, percent signs and characters beyond ASCII
    settings.REFRAIN_CONTROLLER_NAME = 'Ünïcode "Records" \\ 100% %1$s %%'
    settings.REFRAIN_SITE_URL = "https://müsic.example/%s/"
    track = make_track(artist=artist, title='Naïve "50%" \\ %2$s')

    # when it is switched from this source (a policy change leaves the
    # track's "last change" time), then both paths write the same
    done = both_paths(
        track=track,
        state="granted",
        actor=artist if source != Source.POLICY else None,
        source=source,
        request_id='req %1$s "ü" \\ %% 🎵',
    )

    payload = done.answer["receipt"]["payload"]
    assert payload["request_id"] == 'req %1$s "ü" \\ %% 🎵'
    assert (
        payload["piiControllers"][0]["piiController"]
        == settings.REFRAIN_CONTROLLER_NAME
    )
