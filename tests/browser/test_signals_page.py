"""The public track page in a real browser, signed out, on a desktop and a
phone: the answer per use in words, the CAWG assertion readable from its JSON
data block (which the Content-Security-Policy lets be, since a browser never
runs a data block: the ``page`` fixture fails on any violation), nothing wider
than the screen. Screenshots go to /tmp/signals-shots/."""

import json
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from consent.services import consent_set, trackconsent_create_missing
from consent.uses import USES, Use
from tests.factories import TrackFactory, UserFactory

pytestmark = [
    pytest.mark.browser,
    # pytest-playwright's stand-in for pytest-base-url defines a session fixture
    # as an instance method, which pytest 9 deprecates; not ours to fix.
    pytest.mark.filterwarnings(
        "ignore:Session-scoped fixtures defined as instance methods"
        ":pytest.PytestRemovedIn10Warning"
    ),
]

SHOTS = Path(tempfile.gettempdir()) / "signals-shots"
VIEWPORTS = {"desktop-1280": (1280, 900), "phone-390": (390, 844)}


@pytest.mark.parametrize("name", VIEWPORTS)
def test_the_public_track_page_reads_on_a_desktop_and_a_phone(
    page, live_server, settings, name
):
    # given a track whose artist allows generative training and input only
    settings.REFRAIN_SITE_URL = live_server.url
    artist = UserFactory(display_name="Mara Lind")
    track = TrackFactory(artist=artist, title="Night Drive")
    trackconsent_create_missing(track_ids=[track.pk])
    for use in (Use.GENAI_TRAINING, Use.AI_INFERENCE):
        consent_set(track=track, use=use, state="granted", actor=artist, source="web")

    # when someone signed out opens its page
    width, height = VIEWPORTS[name]
    page.set_viewport_size({"width": width, "height": height})
    response = page.goto(f"{live_server.url}/t/{track.public_id}/")

    # then it answers each use in words, with the signals in its headers
    assert response.status == 200
    assert response.headers["content-usage"] == "train-ai=y, search=y"
    expect(page.get_by_role("heading", level=1)).to_have_text("Night Drive")
    expect(page.get_by_text("By Mara Lind")).to_be_visible()
    for use, allowed in (
        (Use.GENAI_TRAINING, True),
        (Use.AI_TRAINING, False),
        (Use.AI_INFERENCE, True),
        (Use.DATA_MINING, False),
    ):
        card = page.get_by_role("region", name=USES[use].name)
        words = "Yes: this track may be used for this." if allowed else "No:"
        expect(card).to_contain_text(words)
    # and the page's script-free data block holds the CAWG assertion
    embedded = page.evaluate(
        "document.getElementById('cawg-training-mining').textContent"
    )
    entries = json.loads(embedded)["data"]["entries"]
    assert entries["cawg.ai_inference"] == {"use": "allowed"}
    assert entries["cawg.data_mining"] == {"use": "notAllowed"}
    # and nothing is wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
        "the page scrolls sideways"
    )

    # and its licence link leads to the RSL document
    licence = page.request.get(
        page.locator('link[rel="license"]').get_attribute("href")
    )
    assert licence.headers["content-type"] == "application/rsl+xml"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"public-track-{name}.png"), full_page=True)
