"""The partner API's background work on a real Celery worker: the export is
built by the worker a request rings, and logged look-ups are folded by it."""

import hashlib

import pytest
from django.test import Client

from consent.models import PartnerLookup, PartnerLookupDay
from consent.propagation import propagation_fan_out
from consent.services import consent_set
from consent.signing import public_jwk, verify
from tests.consent.brokers import private_broker
from tests.consent.helpers import GENAI
from tests.consent.partner_helpers import get, partner_key, post_json
from tests.drills import Workers, database_for_workers, wait_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_worker_builds_the_export_and_folds_the_lookups(
    tmp_path, settings, make_track
):
    # given two tracks, one granted, and a partner
    settings.REFRAIN_EXPORT_DIR = str(tmp_path / "exports")
    granted, other = make_track(), make_track()
    consent_set(track=granted, use=GENAI, state="granted", actor=None, source="web")
    propagation_fan_out()
    _, key = partner_key()
    client = Client()

    with private_broker(tmp_path) as broker:
        database, _ = database_for_workers(tmp_path)
        workers = Workers(
            tmp_path,
            database,
            broker,
            {"REFRAIN_EXPORT_DIR": settings.REFRAIN_EXPORT_DIR},
        )
        try:
            workers.start_ready()
            # when the partner asks for the export, then checks two tracks
            assert (
                get(client, "/api/v1/eligibility/export", key, use=GENAI).status_code
                == 202
            )
            answers: list = []

            def exported() -> bool:
                answer = get(client, "/api/v1/eligibility/export", key, use=GENAI)
                answers.append(answer)
                return answer.status_code == 200

            wait_for(exported, "the export built by the worker", workers)
            check = post_json(
                client,
                "/api/v1/eligibility/check",
                {"use": GENAI, "track_ids": [granted.public_id, other.public_id]},
                key,
            )
            assert check.status_code == 200
            wait_for(
                lambda: PartnerLookupDay.objects.count() == 2,
                "the look-ups folded by the worker",
                workers,
            )
        finally:
            workers.stop_all()

    # then the file lists the granted track and its signature verifies
    answer = answers[-1]
    body = b"".join(answer.streaming_content)
    assert granted.public_id in body.decode() and other.public_id not in body.decode()
    assert verify(
        hashlib.sha256(body).digest(), answer["X-Refrain-Signature"], public_jwk()
    )
    # and the look-up log holds the answers given, the staging rows gone
    assert PartnerLookup.objects.count() == 0
    days = {row.track_id: row for row in PartnerLookupDay.objects.all()}
    assert days[granted.pk].last_eligible is True
    assert days[other.pk].last_eligible is False
