"""PrivateResponsesMiddleware: what a signed-in artist (or a token) is shown is
never stored by a cache; anonymous pages are left alone."""

import pytest
from django.test import Client

from accounts.services import token_create
from consent.models import BulkJob, Receipt
from consent.services import bulk_change_start, consent_set, trackconsent_create_missing
from consent.uses import Use
from tests.factories import TrackFactory


def _cache_control(response) -> set[str]:
    return {
        part.strip()
        for part in response.get("Cache-Control", "").split(",")
        if part.strip()
    }


@pytest.fixture
def artist_data(user):
    """The artist's track, one decision (with its receipt) and a bulk job."""
    track = TrackFactory(artist=user)
    trackconsent_create_missing(track_ids=[track.pk])
    consent_set(
        track=track, use=Use.AI_TRAINING, state="granted", actor=user, source="web"
    )
    job = bulk_change_start(
        artist=user,
        use=Use.DATA_MINING,
        state="denied",
        actor=user,
        track_public_ids=[track.public_id],
    )
    return {
        "track": track,
        "receipt": Receipt.objects.filter(artist=user).latest("pk"),
        "job": BulkJob.objects.get(pk=job.pk),
    }


ARTIST_PAGES = {
    "track list": lambda data: "/tracks/",
    "track page": lambda data: f"/tracks/{data['track'].public_id}/",
    "receipt": lambda data: f"/receipts/{data['receipt'].public_id}.json",
    "bulk status": lambda data: f"/tracks/bulk/{data['job'].public_id}/",
    "settings": lambda data: "/settings/",
    "profile": lambda data: "/settings/profile/",
    "consent settings": lambda data: "/settings/consent/",
    "tokens": lambda data: "/settings/tokens/",
    "upload": lambda data: "/tracks/upload/",
    "API, signed in": lambda data: "/api/v1/me/tracks",
}


@pytest.mark.parametrize("page", ARTIST_PAGES)
def test_every_page_with_an_artists_data_is_private_and_not_stored(
    client, user, artist_data, page
):
    # given a signed-in artist with tracks, a receipt and a bulk job
    client.force_login(user)

    # when they open the page
    response = client.get(ARTIST_PAGES[page](artist_data))

    # then it is theirs, and no cache may keep it
    assert response.status_code == 200
    assert {"private", "no-store"} <= _cache_control(response)
    assert "public" not in _cache_control(response)


def test_an_api_answer_to_a_personal_token_is_not_stored(user, artist_data):
    # given a client with no session, only the artist's personal token
    _, plaintext = token_create(user=user, name="script")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")

    # when it reads the artist's tracks
    response = client.get("/api/v1/me/tracks")

    # then the answer is private and not stored
    assert response.status_code == 200
    assert response.json()["items"][0]["public_id"] == artist_data["track"].public_id
    assert {"private", "no-store"} <= _cache_control(response)


def test_a_refused_token_is_not_stored_either(db):
    response = Client(HTTP_AUTHORIZATION="Bearer rfn_not-a-token").get(
        "/api/v1/me/tracks"
    )

    assert response.status_code == 401
    assert {"private", "no-store"} <= _cache_control(response)


@pytest.mark.parametrize("path", ["/", "/api/v1/openapi.json"])
def test_anonymous_pages_are_left_to_their_own_caching(client, db, path):
    # when a visitor who is not signed in opens a public page
    response = client.get(path)

    # then the middleware adds nothing
    assert response.status_code == 200
    assert "no-store" not in _cache_control(response)
    assert "private" not in _cache_control(response)
