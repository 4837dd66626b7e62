"""The change feed: every change in commit order behind a cursor that never
skips a change committed late; kept 35 days, an expired cursor a clear 410."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from catalog.models import Track
from consent.models import ChangeFeedEntry, PropagationChange
from consent.partners import feed_page, feed_position, feed_prune, permitted
from consent.partners.feed import feed_append
from consent.propagation import propagation_fan_out
from consent.services import consent_set, trackconsent_create_missing
from consent.uses import USE_ORDER
from tests.consent.helpers import GENAI, MINING
from tests.consent.partner_helpers import get, partner_key
from tests.factories import TrackFactory, UserFactory

CHANGES = "/api/v1/changes"


def _change(track: Track, use: str, state: str) -> None:
    consent_set(track=track, use=use, state=state, actor=None, source="web")


@pytest.mark.django_db
def test_changes_come_in_order_with_what_each_permits(client, make_track):
    # given two tracks changed three times, and the fan-out run
    first, second = make_track(), make_track()
    _change(first, GENAI, "granted")
    propagation_fan_out()
    _change(second, MINING, "granted")
    _change(first, GENAI, "denied")
    propagation_fan_out()
    _, key = partner_key()

    # when a partner reads the feed from the beginning, two at a time
    page = get(client, CHANGES, key, limit=2).json()
    rest = get(client, CHANGES, key, cursor=page["next_cursor"], limit=2).json()

    # then it gets every change in order, each with the state after it
    changes = page["changes"] + rest["changes"]
    assert changes[0]["id"] == first.public_id
    assert {c["id"] for c in changes[1:]} == {first.public_id, second.public_id}
    assert changes[0]["permitted"] == {use: use == GENAI for use in USE_ORDER}
    later = {c["id"]: c for c in changes[1:]}
    assert later[first.public_id]["permitted"][GENAI] is False
    assert later[second.public_id]["permitted"][MINING] is True
    first.refresh_from_db()
    assert later[first.public_id]["consent_version"] == first.consent_version
    assert page["has_more"] is True and rest["has_more"] is False
    # and reading again from the last cursor gives nothing new
    again = get(client, CHANGES, key, cursor=rest["next_cursor"]).json()
    assert again["changes"] == [] and again["next_cursor"] == rest["next_cursor"]


@pytest.mark.django_db
def test_a_bad_or_expired_cursor_is_refused_clearly(client, make_track):
    _, key = partner_key()
    track = make_track()
    _change(track, GENAI, "granted")
    propagation_fan_out()
    cursor = get(client, CHANGES, key).json()["next_cursor"]

    bad = get(client, CHANGES, key, cursor="42")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_request"

    # when the feed is pruned past the cursor (rows older than 35 days)
    ChangeFeedEntry.objects.update(created_at=timezone.now() - timedelta(days=40))
    _change(track, GENAI, "denied")
    propagation_fan_out()
    assert feed_prune() == 1

    # then the old cursor's next row is gone: a 410 that says what to do
    expired = get(client, CHANGES, key, cursor="c0")
    assert expired.status_code == 410
    assert expired.json()["code"] == "cursor_expired"
    assert "export" in expired.json()["message"]
    # while the cursor of the last row read still works
    fresh = get(client, CHANGES, key, cursor=cursor)
    assert fresh.status_code == 200 and len(fresh.json()["changes"]) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_lower_number_committed_after_a_higher_one_is_not_skipped():
    """Two fan-outs in two transactions: the first numbers its row and waits
    before committing; the second must not become visible ahead of it."""
    artist = UserFactory()
    tracks = [TrackFactory(artist=artist) for _ in range(2)]
    trackconsent_create_missing(track_ids=[track.pk for track in tracks])
    numbered, release, second_done = (threading.Event() for _ in range(3))
    errors: list[BaseException] = []

    def first_fan_out():
        try:
            with transaction.atomic():
                feed_append(track_ids=[tracks[0].pk], now=timezone.now())
                numbered.set()
                release.wait(10)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    def second_fan_out():
        try:
            with transaction.atomic():
                feed_append(track_ids=[tracks[1].pk], now=timezone.now())
            second_done.set()
        except BaseException as error:  # noqa: BLE001
            errors.append(error)
        finally:
            connection.close()

    first = threading.Thread(target=first_fan_out)
    first.start()
    assert numbered.wait(10)
    second = threading.Thread(target=second_fan_out)
    second.start()

    # while the first is uncommitted, a reader sees neither, and the second
    # waits for the first (it cannot commit a higher number ahead of it)
    assert not second_done.wait(0.5)
    assert feed_page(after=0, limit=10).changes == []

    release.set()
    first.join(10)
    second.join(10)
    assert not errors, errors

    # then both are there, the first one's number below the second's
    changes = feed_page(after=0, limit=10).changes
    assert [c["id"] for c in changes] == [t.public_id for t in tracks]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_change_committed_late_reaches_a_partner_that_read_meanwhile():
    """Two consent changes in two transactions: the one with the lower
    outbox id commits last, after a fan-out and a read of the feed."""
    artist = UserFactory()
    tracks = [TrackFactory(artist=artist) for _ in range(2)]
    trackconsent_create_missing(track_ids=[track.pk for track in tracks])
    propagation_fan_out()
    start = feed_position()
    written, release = threading.Event(), threading.Event()

    def slow_change():
        try:
            with transaction.atomic():
                _change(tracks[0], GENAI, "granted")
                written.set()
                release.wait(10)
        finally:
            connection.close()

    slow = threading.Thread(target=slow_change)
    slow.start()
    assert written.wait(10)
    _change(tracks[1], GENAI, "granted")  # commits first, with a higher id
    # only the committed one is visible
    assert not PropagationChange.objects.filter(track_id=tracks[0].pk).exists()

    propagation_fan_out()
    page = feed_page(after=start, limit=10)
    assert [c["id"] for c in page.changes] == [tracks[1].public_id]

    release.set()
    slow.join(10)
    propagation_fan_out()

    later = feed_page(after=int(page.next_cursor[1:]), limit=10)
    assert [c["id"] for c in later.changes] == [tracks[0].public_id]
    assert later.changes[0]["permitted"][GENAI] is True
    assert feed_position() == int(later.next_cursor[1:])


@pytest.mark.django_db
def test_permitted_unpacks_the_bits_per_use():
    assert permitted(0) == dict.fromkeys(USE_ORDER, False)
    assert permitted(0b1001) == {
        use: index in (0, 3) for index, use in enumerate(USE_ORDER)
    }
