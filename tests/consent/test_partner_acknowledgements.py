"""Acknowledgements: a partner says it acted; every withdrawal is owed by
every partner within its deadline, and overdue ones are found."""

from datetime import timedelta

import pytest
from django.utils import timezone

from consent.models import Acknowledgement, Partner
from consent.partners import (
    overdue_track_condition,
    withdrawals_overdue,
    withdrawals_owed,
)
from consent.services import consent_set
from tests.consent.helpers import GENAI, MINING
from tests.consent.partner_helpers import partner_key, post_json

pytestmark = pytest.mark.django_db

ACKS = "/api/v1/acknowledgements"


def _change(track, use, state):
    consent_set(track=track, use=use, state=state, actor=None, source="web")
    track.refresh_from_db()


@pytest.fixture
def withdrawn(make_track):
    """A track granted, then withdrawn, for generative training."""
    track = make_track()
    _change(track, GENAI, "granted")
    _change(track, GENAI, "denied")
    return track


def _ack(client, key, withdrawn, **fields):
    body = {
        "track": withdrawn.isrc_display,
        "use": GENAI,
        "consent_version": withdrawn.consent_version,
        "status": "removed",
        "dataset": "Acme Music v2.1",
        "note": "Removed before the next run.",
        **fields,
    }
    return post_json(client, ACKS, body, key)


def test_an_acknowledgement_is_recorded_and_settles_the_withdrawal(client, withdrawn):
    partner, key = partner_key()
    Partner.objects.filter(pk=partner.pk).update(
        created_at=timezone.now() - timedelta(days=60)
    )
    partner.refresh_from_db()
    assert [entry.track_id for entry in withdrawals_owed(partner)] == [withdrawn.pk]

    answer = _ack(client, key, withdrawn)

    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["track"] == withdrawn.public_id
    assert (body["status"], body["dataset"]) == ("removed", "Acme Music v2.1")
    ack = Acknowledgement.objects.get()
    assert (ack.partner, ack.consent_version) == (partner, withdrawn.consent_version)
    assert list(withdrawals_owed(partner)) == []


def test_a_withdrawal_becomes_overdue_after_the_partners_deadline(withdrawn):
    partner, _ = partner_key()
    Partner.objects.filter(pk=partner.pk).update(
        created_at=timezone.now() - timedelta(days=60), ack_days=30
    )
    partner.refresh_from_db()
    now = timezone.now()

    # within the deadline it is owed, not overdue
    assert list(withdrawals_overdue(partner, now)) == []
    # after it, overdue, and the track list's filter finds the track
    later = now + timedelta(days=31)
    assert [e.track_id for e in withdrawals_overdue(partner, later)] == [withdrawn.pk]
    tracks = type(withdrawn).objects.filter(overdue_track_condition(later))
    assert list(tracks) == [withdrawn]


def test_a_use_permitted_again_is_no_longer_owed(withdrawn):
    partner, _ = partner_key()
    Partner.objects.filter(pk=partner.pk).update(
        created_at=timezone.now() - timedelta(days=1)
    )
    partner.refresh_from_db()
    assert withdrawals_owed(partner).count() == 1

    _change(withdrawn, GENAI, "granted")

    assert withdrawals_owed(partner).count() == 0


def test_a_partner_created_after_a_withdrawal_does_not_owe_it(withdrawn):
    partner, _ = partner_key()
    assert withdrawals_owed(partner).count() == 0


def test_an_old_acknowledgement_does_not_settle_a_newer_withdrawal(client, withdrawn):
    partner, key = partner_key()
    Partner.objects.filter(pk=partner.pk).update(
        created_at=timezone.now() - timedelta(days=1)
    )
    partner.refresh_from_db()
    old_version = withdrawn.consent_version
    assert _ack(client, key, withdrawn).status_code == 201
    _change(withdrawn, GENAI, "granted")
    _change(withdrawn, GENAI, "denied")

    assert [e.consent_version for e in withdrawals_owed(partner)] == [
        withdrawn.consent_version
    ]
    assert withdrawn.consent_version > old_version


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"track": "ZZ-XXX-26-00001"}, 404, "unknown_track"),
        ({"consent_version": 99}, 409, "version_ahead"),
        ({"status": "deleted"}, 400, "invalid_request"),
        ({"dataset": ""}, 400, "invalid_request"),
        ({"dataset": "   "}, 400, "dataset_required"),
        ({"use": MINING + "-x"}, 400, "invalid_request"),
        ({"consent_version": True}, 400, "invalid_request"),
        ({"consent_version": -1}, 400, "invalid_request"),
        ({"track": "has spaces"}, 400, "invalid_request"),
        ({"extra": 1}, 400, "invalid_request"),
    ],
)
def test_a_refused_acknowledgement_says_why_and_writes_nothing(
    client, withdrawn, fields, status, code
):
    _, key = partner_key()

    answer = _ack(client, key, withdrawn, **fields)

    assert answer.status_code == status, answer.content
    assert answer.json()["code"] == code
    assert Acknowledgement.objects.count() == 0
