"""The public trainability answer, the API's documentation and schema."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from consent.services import consent_set
from consent.uses import USE_ORDER
from tests.consent.helpers import GENAI

pytestmark = pytest.mark.django_db


def _url(identifier: str) -> str:
    return f"/api/v1/tracks/{identifier}/trainability"


def test_anyone_can_ask_what_a_track_may_be_used_for(client, make_track):
    track = make_track()
    consent_set(track=track, use=GENAI, state="granted", actor=None, source="web")
    track.refresh_from_db()

    for identifier in (track.public_id, track.isrc, track.isrc_display):
        answer = client.get(_url(identifier))

        assert answer.status_code == 200
        body = answer.json()
        assert body["id"] == track.public_id
        assert body["permitted"] == {use: use == GENAI for use in USE_ORDER}
        assert body["consent_version"] == track.consent_version
        assert answer["Cache-Control"] == "public, max-age=60"
        assert answer["ETag"]


def test_a_cached_answer_is_revalidated_by_its_etag(client, make_track):
    track = make_track()
    etag = client.get(_url(track.public_id))["ETag"]

    unchanged = client.get(_url(track.public_id), headers={"If-None-Match": etag})
    assert unchanged.status_code == 304

    consent_set(track=track, use=GENAI, state="granted", actor=None, source="web")
    changed = client.get(_url(track.public_id), headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["permitted"][GENAI] is True


def test_a_label_track_is_not_permitted_and_an_unknown_one_is_a_404(client, make_track):
    track = make_track(signed=True)

    assert not any(client.get(_url(track.public_id)).json()["permitted"].values())
    missing = client.get(_url("ZZXXX2600001"))
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    bad = client.get(_url("has%20space"))
    assert bad.status_code == 400


def test_the_public_answer_is_rate_limited_by_address(settings, make_track):
    settings.REFRAIN_PUBLIC_RATE_LIMIT = 3
    track = make_track()
    one, other = Client(REMOTE_ADDR="10.9.8.7"), Client(REMOTE_ADDR="10.9.8.6")

    statuses = [one.get(_url(track.public_id)).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    refused = one.get(_url(track.public_id))
    assert refused.json()["code"] == "rate_limited" and int(refused["Retry-After"]) >= 1
    assert other.get(_url(track.public_id)).status_code == 200


def test_the_schema_describes_every_endpoint(client):
    schema = client.get("/api/v1/openapi.json").json()

    operations = {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
    }
    assert operations >= {
        ("GET", "/api/v1/me/tracks"),
        ("PUT", "/api/v1/me/tracks/{public_id}/consent/{use}"),
        ("POST", "/api/v1/catalog/import"),
        ("POST", "/api/v1/eligibility/check"),
        ("GET", "/api/v1/eligibility/export"),
        ("GET", "/api/v1/eligibility/export.sig"),
        ("GET", "/api/v1/changes"),
        ("POST", "/api/v1/acknowledgements"),
        ("GET", "/api/v1/tracks/{identifier}/trainability"),
    }
    error = schema["components"]["schemas"]["ErrorOut"]
    assert set(error["required"]) == {"code", "message", "detail"}
    public = schema["paths"]["/api/v1/tracks/{identifier}/trainability"]["get"]
    assert not public.get("security")


def test_the_docs_page_works_offline(client):
    page = client.get("/api/v1/docs")

    assert page.status_code == 200
    html = page.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, html[:500]
    # every asset is served by the app itself
    assert all(source.startswith("/") for source in sources), sources
    for source in sources:
        if source.startswith("/static/"):
            assert finders.find(source.removeprefix("/static/")), source
    # (tests/browser/test_security_journey.py sees it draw the schema)
