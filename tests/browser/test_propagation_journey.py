"""Propagation in a real browser: after a switch the track's row says its
change is pending, and it updates itself to delivered once the consumers have
it (HTMX polling, no reload, no inline script); each state on the list and
the track page, on a desktop and a phone.

Statuses are found by their live region (role ``status``) and words, never by
colour."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from playwright.sync_api import Page, expect

from consent.models import Consumer, SyncState
from consent.propagation import consumer_deliver, propagation_run
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

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


class _Accept(BaseHTTPRequestHandler):
    """A partner that acknowledges every delivery."""

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def partner(settings):
    """A local HTTP receiver, reachable because private addresses are allowed."""
    settings.REFRAIN_WEBHOOK_ALLOW_PRIVATE = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _consumers(partner_url: str) -> list[Consumer]:
    Consumer.objects.all().delete()
    return [
        Consumer.objects.create(
            name="Training-data registry",
            kind=Consumer.Kind.REGISTRY,
            uses=list(USES),
        ),
        Consumer.objects.create(
            name="Partner Lab",
            kind=Consumer.Kind.WEBHOOK,
            url=partner_url,
            uses=list(USES),
            secret="whsec_dGVzdC1zZWNyZXQtZm9yLXRoZS1icm93c2VyLXRlc3Q=",
        ),
    ]


def _deliver_everything(consumers: list[Consumer]) -> None:
    """What the workers do, in this process."""
    propagation_run()
    for consumer in consumers:
        consumer_deliver(consumer_id=consumer.pk)


def _track(artist, title: str):
    track = TrackFactory(artist=artist, title=title)
    trackconsent_create_missing(track_ids=[track.pk])
    track.refresh_from_db()
    return track


def _sign_in(page: Page, base_url: str, user) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": base_url,
            }
        ]
    )


def _status(page: Page, track):
    """The track's status region (a polite live region)."""
    return page.locator(f"[role=status]:has(#prop-{track.public_id})")


def test_a_switched_row_says_pending_then_delivered_by_itself(
    page, live_server, partner
):
    # given an artist's track that both consumers have
    consumers = _consumers(partner)
    artist = UserFactory()
    track = _track(artist, "Night Drive")
    _deliver_everything(consumers)
    _sign_in(page, live_server.url, artist)
    page.set_viewport_size(DESKTOP)
    page.goto(f"{live_server.url}/tracks/")
    status = _status(page, track)
    expect(status).to_have_text("Delivered to all 2 systems that use music")
    expect(status).to_have_attribute("aria-live", "polite")

    # when the artist switches generative AI training on
    page.evaluate("window.__sameDocument = true")
    page.get_by_role(
        "group", name=f"{USES[Use.GENAI_TRAINING].name} for “Night Drive”: "
    ).get_by_role("button", name="Yes", exact=True).click()

    # then the row says the change is pending, and keeps asking
    expect(status).to_contain_text("Pending")
    expect(status).to_have_text("Pending (0 of 2 delivered)")
    expect(page.locator(f"#prop-{track.public_id}")).to_have_attribute(
        "hx-trigger", "every 2s"
    )

    # when the workers deliver it
    _deliver_everything(consumers)

    # then the row updates itself to delivered, without a reload, and stops asking
    expect(status).to_have_text("Delivered to all 2 systems that use music")
    expect(page.locator(f"#prop-{track.public_id}")).not_to_have_attribute(
        "hx-trigger", "every 2s"
    )
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    assert not SyncState.objects.filter(next_attempt_at__isnull=False).exists()


def _one_state_each(tracks: dict, *, consumers, last: Consumer) -> None:
    """Every consumer has every track, except ``last``: it has the first,
    waits for the second, retries the third and gave up on the fourth."""
    now = timezone.now()
    retry_at = now.replace(hour=17, minute=30, second=0, microsecond=0)
    states = [
        {},
        {"next_attempt_at": now},
        {"attempts": 2, "next_attempt_at": retry_at},
        {"attempts": 10, "dead_at": now},
    ]
    for track, state in zip(tracks.values(), states, strict=True):
        for consumer in (*consumers, last):
            fields = (
                state
                if consumer == last and state
                else {"delivered_version": track.consent_version}
            )
            SyncState.objects.update_or_create(
                consumer=consumer,
                track=track,
                defaults={"desired_version": track.consent_version, **fields},
            )


def test_each_state_on_the_list_and_the_track_page(
    page, live_server, partner, artifacts_dir
):
    # given four tracks, one in each state, and a second partner
    registry, partner_lab = _consumers(partner)
    studio = Consumer.objects.create(
        name="Studio Nine",
        kind=Consumer.Kind.WEBHOOK,
        url=partner,
        uses=[Use.GENAI_TRAINING],
    )
    artist = UserFactory()
    titles = ("Delivered song", "Pending song", "Retrying song", "Failed song")
    tracks = {title: _track(artist, title) for title in titles}
    for track in tracks.values():
        consent_set(
            track=track,
            use=Use.GENAI_TRAINING,
            state="granted",
            actor=artist,
            source="web",
        )
        track.refresh_from_db()
    _one_state_each(tracks, consumers=(registry, partner_lab), last=studio)
    # (the outbox rows of these changes are not fanned out: nothing moves)
    expected = {
        "Delivered song": "Delivered to all 3 systems that use music",
        "Pending song": "Pending (2 of 3 delivered)",
        "Retrying song": "Retrying (next try at 17:30)",
        "Failed song": "Failed for 1 system: Studio Nine",
    }
    _sign_in(page, live_server.url, artist)

    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        # when the artist opens the list
        page.goto(f"{live_server.url}/tracks/")
        # then every row says where its last change stands
        for title, words in expected.items():
            expect(_status(page, tracks[title])).to_have_text(words)
            expect(_status(page, tracks[title])).to_be_visible()
        page.screenshot(path=artifacts_dir / f"ui-list-{name}.png", full_page=True)
        # and nothing scrolls sideways on the phone
        if name == "phone":
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], width

        # when they open the retrying track, then its page says the same
        page.goto(f"{live_server.url}{tracks['Retrying song'].get_absolute_url()}")
        expect(_status(page, tracks["Retrying song"])).to_have_text(
            expected["Retrying song"]
        )
        page.screenshot(path=artifacts_dir / f"ui-track-{name}.png", full_page=True)
        if name == "phone":
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], width
