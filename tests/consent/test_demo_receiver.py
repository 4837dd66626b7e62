"""The demo's own partner: ``receiver_apply`` (verify, then apply only
forward), the ``/demo/webhook/`` view that serves it, and ``seed_demo``'s
"Demo partner" consumer pointed at it."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from consent.models import Consumer
from consent.propagation import (
    consumer_create,
    consumer_deliver,
    propagation_fan_out,
)
from consent.propagation.payloads import canonical
from consent.propagation.receiver import receiver_apply, receiver_file_store
from consent.propagation.webhooks import secret_new, signature_header
from consent.services import consent_set
from tests.factories import StaffFactory, UserFactory

SECRET = secret_new()
RECEIVER = "/demo/webhook/"


def state_body(*tracks: tuple[str, int, dict]) -> str:
    return canonical(
        {
            "type": "consent.state",
            "data": {
                "tracks": [
                    {"track": t, "isrc": None, "consent_version": v, "eligible": e}
                    for t, v, e in tracks
                ]
            },
        }
    )


def signed(body: str, secrets_=(SECRET,), at=None, msg_id="msg_1") -> dict:
    at = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature_header(
            secrets_=list(secrets_), message_id=msg_id, at=at, body=body
        ),
    }


YES = {"genai-training": True}
NO = {"genai-training": False}


# --- receiver_apply -------------------------------------------------------------


def test_a_signed_state_is_applied():
    store = {}
    body = state_body(("trackA", 3, YES), ("trackB", 1, NO))

    status, words = receiver_apply(store, body, signed(body), SECRET)

    assert (status, words) == (200, "Applied 2, already held 0, older ignored 0.")
    assert {key: (v["version"], v["eligible"]) for key, v in store.items()} == {
        "trackA": (3, YES),
        "trackB": (1, NO),
    }
    assert store["trackA"]["message_id"] == "msg_1"


def test_versions_only_move_forward_and_duplicates_are_harmless():
    store = {}
    newer = state_body(("trackA", 5, NO))
    older = state_body(("trackA", 4, YES))
    receiver_apply(store, newer, signed(newer), SECRET)

    assert receiver_apply(store, newer, signed(newer), SECRET) == (
        200, "Applied 0, already held 1, older ignored 0."
    )  # fmt: skip
    assert receiver_apply(store, older, signed(older), SECRET) == (
        200, "Applied 0, already held 0, older ignored 1."
    )  # fmt: skip
    assert (store["trackA"]["version"], store["trackA"]["eligible"]) == (5, NO)


def test_two_states_under_one_version_are_reported_and_the_first_kept():
    # given a receiver holding version 5 as "yes"
    store, tally = {}, {}
    first = state_body(("trackA", 5, YES))
    receiver_apply(store, first, signed(first), SECRET, tally)

    # when version 5 arrives again saying "no" (which Refrain never sends)
    second = state_body(("trackA", 5, NO))
    status, words = receiver_apply(store, second, signed(second), SECRET, tally)

    # then the state held is kept and the conflict reported, in words and
    # in the tally
    assert (status, words) == (
        200, "Applied 0, already held 1, older ignored 0, 1 in conflict with the "
        "state held."
    )  # fmt: skip
    assert (store["trackA"]["version"], store["trackA"]["eligible"]) == (5, YES)
    assert tally == {
        "applied": 1,
        "unchanged": 1,
        "older": 0,
        "conflicts": [("trackA", 5, YES, NO)],
    }


def _tampered(body, headers):
    return body.replace("true", "false"), headers


def _wrong_secret(body, headers):
    return body, signed(body, secrets_=(secret_new(),))


def _stale(body, headers):
    return body, signed(body, at=datetime.now(UTC) - timedelta(minutes=6))


def _future(body, headers):
    return body, signed(body, at=datetime.now(UTC) + timedelta(minutes=6))


def _no_signature(body, headers):
    return body, {k: v for k, v in headers.items() if k != "webhook-signature"}


def _garbled_signature(body, headers):
    return body, {**headers, "webhook-signature": "not-a-signature"}


def _other_id(body, headers):
    return body, {**headers, "webhook-id": "msg_2"}


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (_tampered, "No matching signature found"),
        (_wrong_secret, "No matching signature found"),
        (_stale, "Message timestamp too old"),
        (_future, "Message timestamp too new"),
        (_no_signature, "Missing required headers"),
        (_garbled_signature, "Malformed signature header"),
        (_other_id, "No matching signature found"),
    ],
)
def test_what_does_not_verify_is_rejected_and_changes_nothing(spoil, reason):
    store = {"trackA": {"version": 1, "eligible": NO, "received_at": "x"}}
    before = json.dumps(store, sort_keys=True)
    body = state_body(("trackA", 2, YES))
    body, headers = spoil(body, signed(body))

    status, words = receiver_apply(store, body, headers, SECRET)

    assert status == 401
    assert words.startswith(f"Signature rejected: {reason}")
    assert json.dumps(store, sort_keys=True) == before


def test_during_a_rotation_either_secret_verifies():
    old, new = secret_new(), secret_new()
    body = state_body(("trackA", 1, YES))
    headers = signed(body, secrets_=(new, old))
    assert receiver_apply({}, body, headers, old)[0] == 200
    assert receiver_apply({}, body, headers, new)[0] == 200


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "consent.state", "data": {}},
        {"type": "consent.state", "data": {"tracks": [{"track": "a"}]}},
        {"type": "consent.state", "data": {"tracks": [
            {"track": "a", "consent_version": 1, "eligible": YES},
            {"track": "b", "consent_version": "2", "eligible": YES}]}},
        {"type": "consent.state", "data": {"tracks": [
            {"track": "a", "consent_version": 1, "eligible": {"x": "yes"}}]}},
    ],
)  # fmt: skip
def test_a_signed_but_malformed_event_is_a_400_and_applies_nothing(payload):
    store = {}
    body = canonical(payload)
    status, words = receiver_apply(store, body, signed(body), SECRET)
    assert status == 400
    assert words.startswith("Malformed consent.state event: ")
    assert store == {}


def test_a_signed_body_that_is_not_json_is_a_400():
    assert receiver_apply({}, "{nope", signed("{nope"), SECRET) == (
        400, "The body is not JSON."
    )  # fmt: skip


def test_test_events_and_unknown_types_are_acknowledged_and_change_nothing():
    store = {}
    test = canonical({"type": "refrain.test", "data": {}})
    other = canonical({"type": "something.else", "data": {}})
    assert receiver_apply(store, test, signed(test), SECRET) == (
        200, "Test event received."
    )  # fmt: skip
    assert receiver_apply(store, other, signed(other), SECRET) == (
        200, "Event type 'something.else' ignored."
    )  # fmt: skip
    assert store == {}


def test_the_file_store_keeps_what_was_written(tmp_path):
    with receiver_file_store(tmp_path, write=True) as store:
        store["trackA"] = {"version": 1}
    with receiver_file_store(tmp_path, write=False) as store:
        assert store == {"trackA": {"version": 1}}
        store["ignored"] = {}
    with receiver_file_store(tmp_path, write=False) as store:
        assert store == {"trackA": {"version": 1}}


# --- the /demo/webhook/ view -------------------------------------------------------


@pytest.fixture
def demo(settings, tmp_path, db):
    settings.REFRAIN_DEMO_RECEIVER = True
    settings.REFRAIN_DEMO_RECEIVER_DIR = str(tmp_path / "receiver")
    consumer = Consumer.objects.create(
        name="Demo partner",
        kind=Consumer.Kind.WEBHOOK,
        url="http://127.0.0.1:8000/demo/webhook/",
        uses=["genai-training", "ai-training"],
        secret=SECRET,
    )
    return consumer


def received(settings) -> dict:
    path = Path(settings.REFRAIN_DEMO_RECEIVER_DIR) / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def post(client, body: str, headers: dict):
    return client.post(
        RECEIVER,
        body,
        content_type="application/json",
        headers=headers,
    )


@pytest.mark.django_db
def test_the_receiver_is_a_404_when_off(client, settings):
    settings.REFRAIN_DEMO_RECEIVER = False
    body = state_body(("trackA", 1, YES))
    assert client.get(RECEIVER).status_code == 404
    assert post(client, body, signed(body)).status_code == 404


def test_the_receiver_applies_a_signed_post_without_a_csrf_token(
    demo, settings, client_ip
):
    from django.test import Client

    client = Client(enforce_csrf_checks=True, REMOTE_ADDR=client_ip)
    body = state_body(("trackA", 2, YES))

    response = post(client, body, signed(body))

    assert response.status_code == 200
    assert response.text == "Applied 1, already held 0, older ignored 0."
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert received(settings)["trackA"]["version"] == 2


def test_the_receiver_rejects_a_bad_signature_with_401(demo, settings, client):
    body = state_body(("trackA", 2, YES))
    headers = signed(body, secrets_=(secret_new(),))

    response = post(client, body, headers)

    assert response.status_code == 401
    assert response.text == "Signature rejected: No matching signature found."
    assert received(settings) == {}


def test_the_receiver_without_its_consumer_says_so(settings, tmp_path, client, db):
    settings.REFRAIN_DEMO_RECEIVER = True
    settings.REFRAIN_DEMO_RECEIVER_DIR = str(tmp_path)
    body = state_body(("trackA", 2, YES))
    response = post(client, body, signed(body))
    assert response.status_code == 503
    assert response.text == "No webhook consumer named 'Demo partner' to verify with."


def test_the_receiver_page_shows_what_it_holds_to_staff(
    demo, settings, client, make_track
):
    track = make_track(title="Northern <Lights>")
    body = state_body((track.public_id, 4, {"genai-training": True,
                                            "ai-training": False}))  # fmt: skip
    post(client, body, signed(body))

    client.force_login(StaffFactory())
    page = client.get(RECEIVER)

    assert page.status_code == 200
    assert "Northern &lt;Lights&gt;" in page.text
    from tests.consent.pages import table_rows

    (row,) = table_rows(page.text, "receiver-table")
    # the uses it was sent, and only those
    assert row[:4] == [
        f"Northern <Lights> {track.public_id}", "4", "Eligible", "Not eligible"
    ]  # fmt: skip
    assert len(row) == 5
    assert "Data mining" not in page.text


def test_the_receiver_page_is_for_staff_unless_debug(demo, settings, client):
    assert client.get(RECEIVER)["Location"].startswith("/accounts/login/")
    client.force_login(UserFactory())
    assert client.get(RECEIVER).status_code == 403
    settings.DEBUG = True
    page = client.get(RECEIVER)
    assert page.status_code == 200
    assert "Nothing received yet." in page.text


# serialized_rollback: the flush around a live-server test would otherwise
# take the shipped policy (and content types) from the tests after it.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_switch_reaches_the_demo_receiver_over_http(
    live_server, settings, tmp_path, make_track
):
    # given the demo receiver served by a real server, and its consumer
    settings.REFRAIN_DEMO_RECEIVER = True
    settings.REFRAIN_DEMO_RECEIVER_DIR = str(tmp_path)
    settings.REFRAIN_WEBHOOK_ALLOW_PRIVATE = True
    made = consumer_create(
        name="Demo partner",
        url=f"{live_server.url}/demo/webhook/",
        uses="genai-training",
        actor=None,
    )
    track = make_track()
    # when an artist switches a use and the propagation runs
    consent_set(track=track, use="genai-training", state="granted",
                actor=track.artist, source="web")  # fmt: skip
    track.refresh_from_db()
    propagation_fan_out()
    consumer_deliver(consumer_id=made.consumer.pk)

    # then the receiver verified it and holds the track's version and state
    held = received(settings)[track.public_id]
    assert (held["version"], held["eligible"]) == (
        track.consent_version,
        {"genai-training": True},
    )


# --- seed_demo ---------------------------------------------------------------------


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_seed_demo_adds_the_demo_partner_once(settings):
    settings.REFRAIN_DEMO_RECEIVER = True
    settings.REFRAIN_WEBHOOK_ALLOW_PRIVATE = True
    settings.REFRAIN_SITE_URL = "http://127.0.0.1:8123/"

    first = _seed()
    consumer = Consumer.objects.get(name="Demo partner")
    secret = consumer.secret
    second = _seed()

    assert (consumer.kind, consumer.url, consumer.uses, consumer.status) == (
        "webhook", "http://127.0.0.1:8123/demo/webhook/",
        ["genai-training", "ai-training"], "active",
    )  # fmt: skip
    assert "demo partner: created Demo partner -> " \
        "http://127.0.0.1:8123/demo/webhook/" in first  # fmt: skip
    assert "demo partner: exists Demo partner" in second
    assert Consumer.objects.filter(name="Demo partner").count() == 1
    assert Consumer.objects.get(name="Demo partner").secret == secret


@pytest.mark.django_db
def test_seed_demo_moves_the_demo_partner_to_the_port_served(settings):
    # given the demo seeded when `make run` served port 8123, its partner held
    # back after failing
    settings.REFRAIN_DEMO_RECEIVER = True
    settings.REFRAIN_WEBHOOK_ALLOW_PRIVATE = True
    settings.REFRAIN_SITE_URL = "http://127.0.0.1:8123"
    _seed()
    Consumer.objects.filter(name="Demo partner").update(hold_until=timezone.now())

    # when `make run` seeds again for port 8124
    settings.REFRAIN_SITE_URL = "http://127.0.0.1:8124"
    out = _seed()

    # then the partner points at the receiver on 8124, free to deliver now,
    # with the same secret
    consumer = Consumer.objects.get(name="Demo partner")
    assert (consumer.url, consumer.hold_until) == (
        "http://127.0.0.1:8124/demo/webhook/",
        None,
    )
    assert "demo partner: moved Demo partner -> " \
        "http://127.0.0.1:8124/demo/webhook/" in out  # fmt: skip


def test_the_site_url_follows_make_runs_host_and_port():
    # given the environment `make run HOST=0.0.0.0 PORT=8124` gives each process
    env = {
        **os.environ,
        "REFRAIN_HOST": "0.0.0.0",  # noqa: S104 - a value, nothing listens here
        "REFRAIN_PORT": "8124",
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
    }
    env.pop("REFRAIN_SITE_URL", None)

    # when the settings are read
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); "
         "from django.conf import settings; print(settings.REFRAIN_SITE_URL)"],
        env=env, capture_output=True, text=True, check=True,
        cwd=django_settings.BASE_DIR,
    )  # fmt: skip

    # then links and the demo partner use that address
    assert result.stdout.strip() == "http://0.0.0.0:8124"


@pytest.mark.django_db
def test_seed_demo_skips_the_partner_when_the_receiver_is_off(settings):
    settings.REFRAIN_DEMO_RECEIVER = False
    assert "demo partner: skipped (REFRAIN_DEMO_RECEIVER is off)" in _seed()
    assert not Consumer.objects.filter(name="Demo partner").exists()


@pytest.mark.django_db
def test_seed_demo_stops_when_the_partner_address_is_refused(settings):
    settings.REFRAIN_DEMO_RECEIVER = True
    settings.REFRAIN_WEBHOOK_ALLOW_PRIVATE = False
    refusal = (
        "The demo partner cannot be created: 127.0.0.1 resolves to 127.0.0.1, "
        "a loopback address"
    )
    with pytest.raises(CommandError, match=refusal):
        _seed()
    assert not Consumer.objects.filter(name="Demo partner").exists()
