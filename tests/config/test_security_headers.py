"""The Content-Security-Policy (django-csp, configured in config/settings/base.py)
is on every response, and the pages it guards hold nothing it would block:
no inline script, no inline style, no event-handler attribute. The browser
tests (tests/browser) fail on any CSP violation the pages report at run time."""

import re

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.test import Client

from consent.services import trackconsent_create_missing
from tests.factories import StaffFactory, TrackFactory

EXPECTED_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
# <script> elements that run code: any without src, except JSON data blocks
INLINE_SCRIPT = re.compile(
    r"<script(?![^>]*\bsrc=)(?![^>]*\btype=\"application/json\")[^>]*>", re.I
)
INLINE_STYLE = re.compile(r"<style\b|\sstyle=", re.I)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)

ANONYMOUS_PAGES = [
    "/",
    "/accounts/login/",
    "/accounts/signup/",
    "/accounts/password/reset/",
    "/accounts/login/code/",
]
ARTIST_PAGES = [
    "/tracks/",
    "/tracks/{track}/",
    "/tracks/upload/",
    "/settings/",
    "/settings/profile/",
    "/settings/consent/",
    "/settings/tokens/",
    "/accounts/email/",
    "/accounts/password/change/",
    "/accounts/2fa/",
]
STAFF_PAGES = [
    "/audit/",
    "/audit/policy/",
    "/admin/",
    "/admin/consent/trackconsent/",
    "/admin/accounts/user/add/",
]


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        name: sources for name, *sources in (part.split() for part in header.split(";"))
    }


def _assert_nothing_inline(html: str) -> None:
    assert INLINE_SCRIPT.findall(html) == []
    assert INLINE_STYLE.findall(html) == []
    assert EVENT_HANDLER.findall(html) == []


@pytest.fixture
def track(user):
    track = TrackFactory(artist=user)
    trackconsent_create_missing(track_ids=[track.pk])
    return track


@pytest.fixture
def staff_client(db, client_ip):
    staff = StaffFactory(is_superuser=True)
    TOTP.activate(staff, generate_totp_secret())
    client = Client(REMOTE_ADDR=client_ip)
    client.force_login(staff)
    return client


@pytest.mark.parametrize("path", ANONYMOUS_PAGES)
def test_public_pages_carry_the_policy_and_nothing_inline(client, db, path):
    response = client.get(path)

    assert response.status_code == 200
    assert _policy(response) == EXPECTED_POLICY
    _assert_nothing_inline(response.text)


def test_the_public_track_page_carries_the_policy_and_nothing_inline(client, track):
    # the CAWG assertion is a JSON data block, which no browser runs
    response = client.get(f"/t/{track.public_id}/")

    assert response.status_code == 200
    assert _policy(response) == EXPECTED_POLICY
    _assert_nothing_inline(response.text)
    assert '<script id="cawg-training-mining" type="application/json">' in (
        response.text
    )


@pytest.mark.parametrize("path", ARTIST_PAGES)
def test_artist_pages_carry_the_policy_and_nothing_inline(client, user, track, path):
    client.force_login(user)

    response = client.get(path.format(track=track.public_id))

    assert response.status_code == 200
    assert _policy(response) == EXPECTED_POLICY
    _assert_nothing_inline(response.text)


@pytest.mark.parametrize("path", STAFF_PAGES)
def test_staff_pages_carry_the_policy_and_nothing_inline(staff_client, path):
    response = staff_client.get(path)

    assert response.status_code == 200
    assert _policy(response) == EXPECTED_POLICY
    _assert_nothing_inline(response.text)


@pytest.mark.parametrize(
    "path",
    [
        "/healthz",
        "/readyz",
        "/api/v1/openapi.json",
        "/no-such-page/",
        "/robots.txt",
        "/.well-known/tdmrep.json",
        "/license.rsl",
        "/t/NoSuchTrack/",
    ],
)
def test_every_other_response_carries_the_policy_too(client, db, path):
    response = client.get(path)

    assert _policy(response) == EXPECTED_POLICY


def test_htmx_is_told_not_to_insert_its_inline_style_or_eval(client, db):
    response = client.get("/accounts/login/")

    assert (
        '<meta name="htmx-config" content=\''
        '{"includeIndicatorStyles": false, "allowEval": false}\'>'
    ) in response.text
    assert '<script src="/static/django_htmx/htmx-2.min.js" defer>' in response.text
