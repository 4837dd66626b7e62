"""Concurrent API writes on one track, from real threads on real connections.

PostgreSQL only: SQLite serialises every writer on one database lock, so it
cannot show a race. Each thread has its own Django test client (so its own
request and its own database connection) and closes its connection when done.
Transactional: the threads must see the committed track and token, and each
other's commits. ``serialized_rollback`` brings back what migrations put in
the database (the shipped policy) after the flush, for the tests that follow.
"""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from accounts.services import token_create
from catalog.models import Track
from consent.ledger import verify_chains
from consent.models import IdempotencyRecord, LedgerEntry, TrackConsent
from consent.services import trackconsent_create_missing
from tests.factories import TrackFactory, UserFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

USE = "genai-training"
STATES = ["granted", "denied", "default"]


@pytest.fixture
def setup(settings):
    # No receipt e-mail task per change (receipts wait for the end of a
    # burst, which only beat's sweep sends): nothing here reaches the broker.
    settings.REFRAIN_RECEIPT_BURST_MINUTES = 3.0
    artist = UserFactory()
    track = TrackFactory(artist=artist)
    trackconsent_create_missing(track_ids=[track.pk])
    _, token = token_create(user=artist, name="load")
    return track, token


def _run_concurrently(requests: list[dict], token: str, track: Track) -> list:
    """Send every request from its own thread, all released at once."""
    start = threading.Barrier(len(requests))
    url = f"/api/v1/me/tracks/{track.public_id}/consent/{USE}"

    def send(request: dict):
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        try:
            start.wait(timeout=30)
            response = client.put(
                url,
                data=json.dumps({"state": request["state"]}),
                content_type="application/json",
                headers=request.get("headers", {}),
            )
            return response.status_code, response.json(), response.get("ETag")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(send, requests))


def test_fifty_concurrent_puts_leave_one_contiguous_intact_chain(
    transactional_db, setup
):
    # given one track, and fifty requests alternating granted/denied/default
    track, token = setup
    requests = [{"state": STATES[i % 3]} for i in range(50)]

    # when they all arrive at once
    answers = _run_concurrently(requests, token, track)

    # then every one is answered 200 (no lost update, no deadlock)
    assert [status for status, _, _ in answers] == [200] * 50
    changed = [body for _, body, _ in answers if body["changed"]]
    # and the ledger has exactly one row per request that changed the state,
    # with versions 1..N and no gap
    entries = list(LedgerEntry.objects.filter(track=track).order_by("consent_version"))
    assert len(entries) == len(changed) >= 1
    assert [e.consent_version for e in entries] == list(range(1, len(changed) + 1))
    # and each changing answer names its own version, as its ETag
    assert sorted(body["consent_version"] for body in changed) == list(
        range(1, len(changed) + 1)
    )
    for _, body, etag in answers:
        assert etag == f'"{body["consent_version"]}"'
    # and the hash chain verifies
    report = verify_chains(track_ids=[track.pk])
    assert [(b.consent_version, b.reason) for b in report.breaks] == []
    assert report.rows_checked == len(changed)
    # and each row starts from the state the previous one left (a writer that
    # waited for the lock saw the commit it waited for)
    links = [
        (after.consent_version, before.new_state, after.old_state)
        for before, after in zip(entries, entries[1:], strict=False)
        if after.old_state != before.new_state
    ]
    assert links == []
    assert all(entry.new_state != entry.old_state for entry in entries)
    # and the stored decision is the last committed change
    track.refresh_from_db()
    assert track.consent_version == len(changed)
    decision = TrackConsent.objects.get(track=track, use=USE).decision
    assert (decision or "default") == entries[-1].new_state


def test_concurrent_retries_with_one_idempotency_key_write_once(
    transactional_db, setup
):
    # given twenty copies of one request with one Idempotency-Key, at once
    track, token = setup
    requests = [{"state": "granted", "headers": {"Idempotency-Key": "same-key"}}] * 20

    answers = _run_concurrently(requests, token, track)

    # then one of them wrote, and all got the same answer
    assert {status for status, _, _ in answers} == {200}
    assert len({json.dumps(body, sort_keys=True) for _, body, _ in answers}) == 1
    assert {etag for _, _, etag in answers} == {'"1"'}
    assert LedgerEntry.objects.filter(track=track).count() == 1
    assert IdempotencyRecord.objects.count() == 1
    assert verify_chains(track_ids=[track.pk]).breaks == []
