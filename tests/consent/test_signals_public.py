"""The public track page ``/t/<id>/`` and the site-wide signal documents
(``consent.signals.public_views``, ``consent.signals.site``), end to end:
answers from the stored eligibility, every signal in headers, markup and
documents, nothing private, a 404 for an unknown id, and robots.txt built once
per change of the change feed, never per request."""

import contextlib
import json
import re
from types import SimpleNamespace

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.models import LedgerEntry, Rule, TrackConsent
from consent.policy import is_eligible, policy_current
from consent.propagation import propagation_fan_out
from consent.services import (
    ConsentLocked,
    consent_set,
    defaults_set,
    policy_apply,
    policy_publish,
    trackconsent_create_missing,
)
from consent.signals.documents import track_path
from consent.signals.site import site_document_cached, site_documents_build
from consent.uses import USE_ORDER
from tests.consent.helpers import GENAI, INFERENCE, MINING, TRAINING
from tests.consent.signals_helpers import (
    cawg_allowed,
    check_formats_follow,
    parse_robots,
    read_rsl,
)
from tests.factories import StaffFactory, TrackFactory, UserFactory

pytestmark = pytest.mark.django_db

CAWG_BLOCK = re.compile(
    r'<script id="cawg-training-mining" type="application/json">(.*?)</script>', re.S
)


@pytest.fixture
def site(settings):
    settings.REFRAIN_SITE_URL = "https://refrain.example"
    return settings.REFRAIN_SITE_URL


def _set(track, use: str, state: str) -> None:
    consent_set(track=track, use=use, state=state, actor=None, source="web")


def _embedded_cawg(html: str) -> dict:
    blocks = CAWG_BLOCK.findall(html)
    assert len(blocks) == 1
    return json.loads(blocks[0])


def test_the_page_says_in_words_and_in_every_format_what_the_track_may_be_used_for(
    client, make_track, site
):
    # given a track whose artist said yes to generative training only
    artist = UserFactory(display_name="Mara Lind")
    track = make_track(artist=artist, title="Night Drive")
    _set(track, GENAI, "granted")

    # when anyone, signed out, opens its public page
    response = client.get(f"/t/{track.public_id}/")

    # then it names the track, the artist and the licence class, answers
    # each use in words, and carries every signal
    assert response.status_code == 200
    html = response.text
    assert "<h1>Night Drive</h1>" in html
    assert "By Mara Lind" in html
    assert '<span class="badge">Independent</span>' in html
    assert html.count("Yes: this track may be used for this.") == 1
    assert html.count("No: this track may not be used for this.") == 3
    page = f"{site}/t/{track.public_id}/"
    assert response["tdm-reservation"] == "1"
    assert response["tdm-policy"] == f"{page}license.rsl"
    assert response["Content-Usage"] == "train-ai=y, search=y"
    assert response["Link"] == (
        f'<{page}license.rsl>; rel="license"; type="application/rsl+xml"'
    )
    assert (
        f'<link rel="license" type="application/rsl+xml" href="{page}license.rsl">'
        in html
    )
    assert '<meta name="tdm-reservation" content="1">' in html
    assert cawg_allowed(_embedded_cawg(html)) == {
        "cawg.ai_generative_training": True,
        "cawg.ai_training": False,
        "cawg.ai_inference": False,
        "cawg.data_mining": False,
    }


def test_the_documents_of_a_track_are_served_with_their_media_types(
    client, make_track, site
):
    # given a track that allows both kinds of training and data mining
    track = make_track()
    for use in (GENAI, TRAINING, MINING):
        _set(track, use, "granted")
    page = client.get(f"/t/{track.public_id}/")

    # when its assertion and its licence are fetched
    assertion = client.get(f"/t/{track.public_id}/training-mining.json")
    licence = client.get(f"/t/{track.public_id}/license.rsl")

    # then the assertion is the one in the page, and the licence the RSL
    # document for the track's path; mining rights are not reserved
    assert assertion["Content-Type"] == "application/json"
    assert assertion.json() == _embedded_cawg(page.text)
    assert licence["Content-Type"] == "application/rsl+xml"
    assert read_rsl(licence.content) == {
        track_path(track.public_id): ({"search", "ai-train"}, {"ai-input"})
    }
    assert page["tdm-reservation"] == "0" and "tdm-policy" not in page
    assert '<meta name="tdm-reservation" content="0">' in page.text
    assert "public" in assertion["Cache-Control"]


def test_the_page_shows_nothing_private_and_nothing_of_another_track(
    client, make_track
):
    # given an artist with no artist name, two tracks, a history of changes
    artist = UserFactory(email="hidden.person@example.com", display_name="")
    track = make_track(artist=artist, title="Public Title", isrc="QZRFN2599991")
    other = make_track(artist=artist, title="Other Title", isrc="QZRFN2599992")
    _set(track, GENAI, "granted")
    _set(track, GENAI, "denied")
    _set(track, INFERENCE, "granted")
    hashes = LedgerEntry.objects.filter(track=track).values_list(
        "entry_hash", flat=True
    )

    # when the page and the track's documents are read
    texts = [
        client.get(f"/t/{track.public_id}/{suffix}").content.decode()
        for suffix in ("", "training-mining.json", "license.rsl")
    ]

    # then none holds the e-mail address (nor its first half, which is the
    # signed-in name of an artist without one), the ISRC, the decisions or
    # their history, nor the other track
    page = texts[0]
    assert "By an artist who has not given a name" in page
    for text in texts:
        assert "hidden.person" not in text and "example.com" not in text
        assert "QZRFN" not in text and "QZ-RFN" not in text
        assert "granted" not in text and "denied" not in text
        assert not any(entry_hash[:10] in text for entry_hash in hashes)
        assert other.public_id not in text and "Other Title" not in text


def test_a_label_licensed_track_shows_its_class_and_nothing_else_of_its_label(
    client, make_track
):
    # given a label-licensed track (the shipped policy prohibits every use)
    track = make_track(signed=True, title="Signed Song")

    # when its page is opened
    response = client.get(f"/t/{track.public_id}/")

    # then it says label-licensed, names no label, and allows nothing
    assert '<span class="badge badge-label">Label-licensed</span>' in response.text
    assert track.label.name not in response.text
    assert response.text.count("No: this track may not be used for this.") == 4
    assert response["tdm-reservation"] == "1"
    assert response["Content-Usage"] == "train-ai=n, search=y"


@pytest.mark.parametrize(
    "path",
    [
        "/t/{missing}/",
        "/t/{missing}/training-mining.json",
        "/t/{missing}/license.rsl",
        "/t/a.b/",
        "/t/{missing}x{missing}/",
    ],
)
def test_an_unknown_track_is_a_404(client, make_track, path):
    # given a real track (whose id is not asked for)
    make_track()

    response = client.get(path.format(missing="NoSuchTrack0000"))

    assert response.status_code == 404
    assert "tdm-reservation" not in response and "Content-Usage" not in response


def test_the_page_answers_head_and_refuses_post(client, make_track):
    track = make_track()

    assert client.head(f"/t/{track.public_id}/").status_code == 200
    assert client.post(f"/t/{track.public_id}/").status_code == 405


# --- The site-wide documents --------------------------------------------------------


def test_the_site_documents_are_served_with_their_media_types(client, make_track, site):
    # given one track that allows input to AI features
    track = make_track()
    _set(track, INFERENCE, "granted")
    propagation_fan_out()

    # when robots.txt, tdmrep.json and the site's licence are fetched
    robots = client.get("/robots.txt")
    tdmrep = client.get("/.well-known/tdmrep.json")
    licence = client.get("/license.rsl")

    # then each has its media type, the default for /t/ and the track
    assert robots["Content-Type"] == "text/plain; charset=utf-8"
    path = track_path(track.public_id)
    assert parse_robots(robots.text, site) == {
        ("usage", "/t/"): "train-ai=n, search=y",
        ("signal", "/t/"): "search=yes, ai-train=no, ai-input=no",
        ("signal", path): "search=yes, ai-train=no, ai-input=yes",
    }
    assert tdmrep["Content-Type"] == "application/json"
    assert tdmrep.json() == [
        {"location": "/t/*", "tdm-reservation": 1, "tdm-policy": f"{site}/license.rsl"}
    ]
    assert licence["Content-Type"] == "application/rsl+xml"
    assert read_rsl(licence.content) == {
        path: ({"search", "ai-input"}, {"ai-train"}),
        "/t/*": ({"search"}, {"ai-train", "ai-input"}),
    }
    assert robots["Cache-Control"] == "public, max-age=300"


def test_robots_txt_is_built_once_per_change_and_rebuilt_after_one(
    client, make_track, site
):
    # given robots.txt served once, before any track permits anything
    track = make_track()
    first = client.get("/robots.txt").text
    assert track.public_id not in first

    # when it is asked for again, nothing having changed
    with CaptureQueriesContext(connection) as queries:
        again = client.get("/robots.txt").text

    # then the cached copy is served: no track or consent row is read
    assert again == first
    read = " ".join(query["sql"] for query in queries.captured_queries)
    assert "consent_trackconsent" not in read and "catalog_track" not in read

    # when the artist says yes to input, and the change reaches the feed
    _set(track, INFERENCE, "granted")
    assert client.get("/robots.txt").text == first  # not fanned out yet
    propagation_fan_out()

    # then robots.txt is built again, with the track's lines
    changed = client.get("/robots.txt").text
    path = track_path(track.public_id)
    assert f"Content-Signal: {path} search=yes, ai-train=no, ai-input=yes" in changed
    assert site_document_cached("robots.txt") == changed

    # and after a withdrawal the track's lines are gone again
    _set(track, INFERENCE, "denied")
    propagation_fan_out()
    assert client.get("/robots.txt").text == first


def test_a_stale_cached_copy_is_never_served_after_a_policy_change(
    client, make_track, site
):
    # given a track with no answer, and robots.txt cached while it is
    # refused (opt-in)
    track = make_track()
    assert track.public_id not in client.get("/robots.txt").text

    # when the policy makes independent input opt-out and is applied
    rules = {**policy_current().rules, ("independent", INFERENCE): Rule.OPT_OUT}
    version = policy_publish(rules=rules, actor=StaffFactory(), reason="Test")
    policy_apply(version_id=version.pk)
    propagation_fan_out()

    # then the track is listed as allowing input
    path = track_path(track.public_id)
    assert f"Content-Signal: {path} search=yes, ai-train=no, ai-input=yes" in (
        client.get("/robots.txt").text
    )


# --- Every format follows eligibility, through the real services ---------------------


def _served_signals(client, track, robots: dict) -> SimpleNamespace:
    """The signals of a track as served: the page's headers and embedded
    assertion, its licence, its robots.txt lines (or the default's)."""
    page = client.get(f"/t/{track.public_id}/")
    assert page.status_code == 200
    path = track_path(track.public_id)
    assertion = client.get(f"/t/{track.public_id}/training-mining.json").json()
    assert assertion == _embedded_cawg(page.text)
    usage = robots.get(("usage", path), robots[("usage", "/t/")])
    assert usage == page["Content-Usage"]
    return SimpleNamespace(
        path=path,
        headers={
            key: page[key]
            for key in ("tdm-reservation", "tdm-policy", "Content-Usage")
            if key in page
        },
        content_usage=page["Content-Usage"],
        content_signal=robots.get(("signal", path), robots[("signal", "/t/")]),
        cawg=assertion,
        rsl=client.get(f"/t/{track.public_id}/license.rsl").content,
    )


def test_every_served_format_follows_eligibility_under_random_policies(client, site):
    """Rules per class and use, decisions and defaults drawn at random, set
    through the services; each example in a savepoint rolled back after it."""
    staff = StaffFactory()
    classes = ("independent", "label")

    @settings(max_examples=12, deadline=None, database=None)
    @given(
        rules=st.fixed_dictionaries(
            {(c, u): st.sampled_from(Rule.values) for c in classes for u in USE_ORDER}
        ),
        states=st.lists(
            st.tuples(
                st.integers(0, 1),
                st.sampled_from(USE_ORDER),
                st.sampled_from(["granted", "denied", "default"]),
            ),
            max_size=8,
        ),
        defaults=st.dictionaries(
            st.sampled_from(USE_ORDER), st.sampled_from(["granted", "denied"])
        ),
    )
    def example(rules, states, defaults):
        with transaction.atomic():
            artist = UserFactory()
            tracks = [
                TrackFactory(artist=artist),
                TrackFactory(artist=artist, signed=True),
            ]
            trackconsent_create_missing(track_ids=[t.pk for t in tracks])
            defaults_set(
                artist=artist, defaults=defaults, apply_to_existing=True, actor=artist
            )
            version = policy_publish(rules=rules, actor=staff, reason="Random")
            policy_apply(version_id=version.pk)
            for index, use, state in states:
                with contextlib.suppress(ConsentLocked):
                    _set(tracks[index], use, state)
            propagation_fan_out()
            robots = parse_robots(site_documents_build().robots_txt, site)
            for track in tracks:
                stored = dict(
                    TrackConsent.objects.filter(track=track).values_list(
                        "use", "decision"
                    )
                )
                permitted = {
                    use: is_eligible(
                        rules[(track.license_class, use)],
                        stored[use],
                        defaults.get(use),
                    )
                    for use in USE_ORDER
                }
                check_formats_follow(permitted, _served_signals(client, track, robots))
            transaction.set_rollback(True)

    example()
