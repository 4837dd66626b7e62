"""A track's propagation status on the artist's pages (issue 11, "What artists
and staff see"): the selector's four states and the words for no consumer,
the list and the track page, the partial they poll (owner only), polling that
stops once settled, and one query for a page of statuses."""

import html
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from consent.models import Consumer, SyncState
from consent.propagation import consumer_deliver, propagation_run
from consent.propagation.status import Status, propagation_status_for
from consent.services import consent_set
from tests.consent.helpers import GENAI
from tests.consent.test_views import CACHED_LIST_QUERIES, LIST_QUERIES, _tbody
from tests.dbstate import database_state
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIST = "/tracks/"
POLL = 'hx-trigger="every 2s"'
_STATUS_OF = re.compile(
    r'<span id="prop-(?P<id>[A-Za-z0-9_-]+)" class="propagation '
    r'propagation-(?P<state>\w+)"(?P<poll>[^>]*)>(?P<text>[^<]*)</span>'
)


@pytest.fixture
def consumers(db):
    """Only the consumers a test makes (the migration's registry row is gone)."""
    Consumer.objects.all().delete()

    def make(*names: str, status: str = Consumer.Status.ACTIVE) -> list[Consumer]:
        return [
            Consumer.objects.create(
                name=name,
                kind=Consumer.Kind.WEBHOOK,
                url=f"https://{name.lower().replace(' ', '-')}.example/hook",
                uses=[GENAI],
                status=status,
            )
            for name in names
        ]

    return make


def sync(consumer, track, **fields) -> SyncState:
    return SyncState.objects.create(
        consumer=consumer, track=track, desired_version=track.consent_version, **fields
    )


def status_in(text: str, track) -> dict:
    """The status element of ``track`` in a page or partial."""
    found = [
        match.groupdict()
        for match in _STATUS_OF.finditer(text)
        if match["id"] == track.public_id
    ]
    assert len(found) == 1, text
    return {**found[0], "text": html.unescape(found[0]["text"])}


def changed(track, artist):
    """The track after one consent change (its version moves to 1)."""
    consent_set(track=track, use=GENAI, state="granted", actor=artist, source="web")
    track.refresh_from_db()
    return track


# --- the selector ------------------------------------------------------------------


def test_each_state_in_its_words(artist, make_track, consumers):
    # given three active consumers and four changed tracks, one per state
    ada, bea, cy = consumers("Ada", "Bea", "Cy")
    delivered, pending, retrying, failed = (
        changed(make_track(artist=artist), artist) for _ in range(4)
    )
    for consumer in (ada, bea, cy):
        sync(consumer, delivered, delivered_version=1)
    sync(ada, pending, delivered_version=1)
    sync(bea, pending, delivered_version=0)  # an older version: not delivered
    # (Cy has no row for it yet: not fanned out, pending too)
    retry_at = timezone.now().replace(hour=14, minute=5) + timedelta(days=1)
    sync(ada, retrying, attempts=2, next_attempt_at=retry_at, last_error="503")
    sync(bea, retrying, attempts=1, next_attempt_at=retry_at + timedelta(hours=1))
    sync(ada, failed, delivered_version=1)
    sync(bea, failed, delivered_version=1)
    sync(cy, failed, attempts=10, dead_at=timezone.now())

    # when the statuses are read for the four tracks
    statuses = propagation_status_for(
        track_ids_versions={
            t.pk: t.consent_version for t in (delivered, pending, retrying, failed)
        }
    )

    # then each says where it stands, in words
    assert [
        (statuses[t.pk].state, statuses[t.pk].text)
        for t in (delivered, pending, retrying, failed)
    ] == [
        ("delivered", "Delivered to all 3 systems that use music"),
        ("pending", "Pending (1 of 3 delivered)"),
        ("retrying", "Retrying (next try at 14:05)"),
        ("failed", "Failed for 1 system: Cy"),
    ]
    # and only the delivered and the dead-lettered ones are settled
    assert [statuses[t.pk].settled for t in (delivered, pending, retrying, failed)] == [
        True,
        False,
        False,
        True,
    ]


def test_no_active_consumer_is_said_plainly(artist, make_track, consumers):
    # given only a paused and a disabled consumer, both behind
    paused = consumers("Paused one", status=Consumer.Status.PAUSED)[0]
    consumers("Disabled one", status=Consumer.Status.DISABLED)
    track = changed(make_track(artist=artist), artist)
    sync(paused, track, delivered_version=0)

    # when its status is read
    [status] = propagation_status_for(
        track_ids_versions={track.pk: track.consent_version}
    ).values()

    # then no system is counted, and nothing is left to wait for
    assert status == Status(
        total=0, delivered=0, retrying=0, failed=(), next_attempt_at=None
    )
    assert status.text == "Not sent: no system receives changes at the moment"
    assert status.settled is True


def test_one_system_and_several_failed_are_counted_in_words(
    artist, make_track, consumers
):
    solo = consumers("Solo")[0]
    track = changed(make_track(artist=artist), artist)
    sync(solo, track, delivered_version=3)  # ahead of the track: delivered

    [alone] = propagation_status_for(track_ids_versions={track.pk: 1}).values()
    assert alone.text == "Delivered to the one system that uses music"

    ben, ann = consumers("Ben", "Ann")
    sync(ben, track, dead_at=timezone.now(), attempts=10)
    sync(ann, track, dead_at=timezone.now(), attempts=10)
    [two] = propagation_status_for(track_ids_versions={track.pk: 1}).values()
    assert two.text == "Failed for 2 systems: Ann, Ben"


def test_a_failure_beside_a_pending_one_is_not_settled(artist, make_track, consumers):
    ann, ben = consumers("Ann", "Ben")
    track = changed(make_track(artist=artist), artist)
    sync(ann, track, dead_at=timezone.now(), attempts=10)

    [status] = propagation_status_for(track_ids_versions={track.pk: 1}).values()

    assert (status.text, status.settled) == ("Failed for 1 system: Ann", False)


def test_the_selector_reads_a_page_of_tracks_in_one_query(
    artist, make_tracks, consumers, django_assert_num_queries
):
    ann, ben = consumers("Ann", "Ben")
    tracks = make_tracks(50, artist=artist)
    for track in tracks[::2]:
        sync(ann, track, delivered_version=0)

    with django_assert_num_queries(1):
        statuses = propagation_status_for(
            track_ids_versions={t.pk: t.consent_version for t in tracks}
        )

    assert sorted(s.text for s in statuses.values()) == (
        ["Pending (0 of 2 delivered)"] * 25 + ["Pending (1 of 2 delivered)"] * 25
    )
    assert propagation_status_for(track_ids_versions={}) == {}


# --- the pages -------------------------------------------------------------------


def test_the_list_and_the_track_page_show_the_status(
    signed_in, artist, make_track, consumers
):
    # given a track that one of two consumers has
    ann, _ = consumers("Ann", "Ben")
    track = changed(make_track(artist=artist, title="Night Drive"), artist)
    sync(ann, track, delivered_version=1)

    # when the artist opens the list and the track page
    for url in (LIST, track.get_absolute_url()):
        page = signed_in.get(url).text

        # then the status is in a polite live region, in words, and polls
        status = status_in(page, track)
        assert status["text"] == "Pending (1 of 2 delivered)"
        assert status["state"] == "pending"
        assert (
            f'hx-get="/tracks/{track.public_id}/propagation/" {POLL} '
            'hx-target="this" hx-swap="outerHTML"' in status["poll"]
        )
        assert (
            '<span class="propagation-region" role="status" aria-live="polite">'
            f'<span id="prop-{track.public_id}"' in page
        )


def test_a_cached_list_shows_the_current_status(
    signed_in, artist, make_track, consumers, django_assert_num_queries
):
    # given the list seen while the change is pending
    ann = consumers("Ann")[0]
    track = changed(make_track(artist=artist), artist)
    row = sync(ann, track, delivered_version=0, attempts=0)
    assert status_in(signed_in.get(LIST).text, track)["text"] == (
        "Pending (0 of 1 delivered)"
    )

    # when the consumer acknowledges it (nothing the page's cache key holds moves)
    SyncState.objects.filter(pk=row.pk).update(delivered_version=1)
    with django_assert_num_queries(CACHED_LIST_QUERIES):
        again = signed_in.get(LIST).text

    # then the cached page shows it delivered, without polling
    status = status_in(again, track)
    assert status["text"] == "Delivered to the one system that uses music"
    assert status["poll"] == ""


def test_the_list_costs_one_query_more_for_any_number_of_statuses(
    signed_in, artist, make_tracks, consumers, django_assert_num_queries
):
    # given 60 tracks (a full page of 50) and three consumers in every state
    ann, ben, cy = consumers("Ann", "Ben", "Cy")
    tracks = make_tracks(60, artist=artist)
    for index, track in enumerate(tracks):
        sync(ann, track, delivered_version=0)
        sync(ben, track, attempts=index % 3, next_attempt_at=timezone.now())
        if index % 5 == 0:
            sync(cy, track, dead_at=timezone.now())

    # then the list costs what it did, plus one query for the statuses
    with django_assert_num_queries(LIST_QUERIES):
        built = signed_in.get(LIST)
    with django_assert_num_queries(CACHED_LIST_QUERIES):
        cached = signed_in.get(LIST)
    assert built.text.count('class="propagation-region" role="status"') == 50
    assert _tbody(cached) == _tbody(built)


def test_the_partial_polls_until_every_system_has_the_change(
    signed_in, artist, make_track, consumers
):
    ann, ben = consumers("Ann", "Ben")
    track = changed(make_track(artist=artist), artist)
    url = f"/tracks/{track.public_id}/propagation/"
    sync(ann, track, delivered_version=1)
    row = sync(ben, track, delivered_version=0)

    pending = signed_in.get(url, HTTP_HX_REQUEST="true")
    assert pending.status_code == 200
    assert pending["Cache-Control"] == (
        "max-age=0, no-cache, no-store, must-revalidate, private"
    )
    assert status_in(pending.text, track) == {
        "id": track.public_id,
        "state": "pending",
        "poll": f' hx-get="{url}" {POLL} hx-target="this" hx-swap="outerHTML"',
        "text": "Pending (1 of 2 delivered)",
    }
    # the partial is the status alone: the live region around it stays
    assert pending.text.startswith(f'<span id="prop-{track.public_id}"')
    assert "role=" not in pending.text

    SyncState.objects.filter(pk=row.pk).update(delivered_version=1)
    done = signed_in.get(url, HTTP_HX_REQUEST="true")
    assert status_in(done.text, track) == {
        "id": track.public_id,
        "state": "delivered",
        "poll": "",
        "text": "Delivered to all 2 systems that use music",
    }
    assert "hx-trigger" not in done.text and "hx-get" not in done.text


def test_the_partial_is_the_owners_only(
    signed_in, client_ip, artist, make_track, consumers
):
    consumers("Ann")
    track = make_track(artist=artist)
    url = f"/tracks/{track.public_id}/propagation/"
    other = Client(REMOTE_ADDR=client_ip)
    other.force_login(UserFactory())
    anonymous = Client(REMOTE_ADDR=client_ip)
    before = database_state()

    # another artist: as if the track did not exist
    assert other.get(url).status_code == 404
    assert other.get("/tracks/no-such-track/propagation/").status_code == 404
    # a write is refused
    assert signed_in.post(url).status_code == 405
    # signed out: to the sign-in page
    response = anonymous.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    # and nothing changed
    assert database_state() == before


def test_a_consumer_name_is_escaped(signed_in, artist, make_track, consumers):
    bad = consumers("<b>Bad</b> & co")[0]
    track = changed(make_track(artist=artist), artist)
    sync(bad, track, dead_at=timezone.now())

    page = signed_in.get(track.get_absolute_url()).text

    assert "<b>Bad</b>" not in page
    assert "Failed for 1 system: &lt;b&gt;Bad&lt;/b&gt; &amp; co" in page


def test_a_switch_turns_the_status_pending_out_of_band(
    signed_in, artist, make_track, consumers
):
    consumers("Ann")
    track = make_track(artist=artist)

    response = signed_in.post(
        "/tracks/switch/",
        {"set": f"{track.public_id}|{GENAI}|granted"},
        HTTP_HX_REQUEST="true",
    )

    # then inside the switch's cell, a pending status that asks at once
    assert response.status_code == 200
    assert response.text.endswith(
        f'<span id="prop-{track.public_id}" class="propagation propagation-pending" '
        f'hx-swap-oob="outerHTML" hx-get="/tracks/{track.public_id}/propagation/" '
        'hx-target="this" hx-trigger="load, every 2s" hx-swap="outerHTML">Pending'
        "</span></td>"
    )


# --- end to end, in process ------------------------------------------------------


def test_a_change_goes_from_pending_to_delivered(signed_in, artist, make_track):
    # given two registry consumers (delivered in process) that have the track
    Consumer.objects.all().delete()
    registries = [
        Consumer.objects.create(name=name, kind=Consumer.Kind.REGISTRY, uses=[GENAI])
        for name in ("Registry A", "Registry B")
    ]
    track = make_track(artist=artist)
    propagation_run()
    for consumer in registries:
        consumer_deliver(consumer_id=consumer.pk)
    url = f"/tracks/{track.public_id}/propagation/"
    assert status_in(signed_in.get(url).text, track)["state"] == "delivered"

    # when the artist changes it: pending, then one and two systems have it
    track = changed(track, artist)
    assert status_in(signed_in.get(url).text, track)["text"] == (
        "Pending (0 of 2 delivered)"
    )
    propagation_run()
    consumer_deliver(consumer_id=registries[0].pk)
    assert status_in(signed_in.get(url).text, track)["text"] == (
        "Pending (1 of 2 delivered)"
    )
    consumer_deliver(consumer_id=registries[1].pk)
    assert status_in(signed_in.get(url).text, track) == {
        "id": track.public_id,
        "state": "delivered",
        "poll": "",
        "text": "Delivered to all 2 systems that use music",
    }
