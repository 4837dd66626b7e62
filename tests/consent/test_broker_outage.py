"""With the broker down, every consent write still commits and answers as its
commit did, quickly; once the broker is back, the beat sweeps finish what the
lost messages would have started.

No stand-in for the broker here: this process's Celery app publishes to a
port that refuses connections (``tests/consent/brokers.py``), so each write
goes through the real publish path and its failure. Transactional, so the
after-commit doorbells ring inside each request, as they do in production;
``serialized_rollback`` brings back the shipped policy for the tests after.
"""

import json
import logging
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.services import token_create
from catalog.models import Track
from consent.ledger import verify_chains
from consent.models import (
    BulkJob,
    LedgerEntry,
    PolicyVersion,
    Receipt,
    RegistryEntry,
    SyncState,
    TrackConsent,
)
from consent.policy import SHIPPED_RULES
from consent.tasks import (
    resume_bulk_jobs,
    resume_policy_runs,
    send_pending_receipts,
    sweep_propagation,
)
from tests.consent.brokers import broker_refusing, drain, private_broker
from tests.consent.helpers import (
    GENAI,
    INFERENCE,
    MINING,
    TRAINING,
    registry_consumer,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

# Two publish retries of 0 and 0.2 s (CELERY_TASK_PUBLISH_RETRY_POLICY), with
# room for a busy test machine.
QUICKLY = 5.0


def _timed(send):
    started = time.monotonic()
    response = send()
    return response, time.monotonic() - started


def test_with_the_broker_down_writes_answer_as_committed_and_sweeps_converge(
    make_track, policy_admin, client_ip, settings, caplog, tmp_path
):
    # given an artist's tracks, a token, and a policy admin
    settings.REFRAIN_BULK_INLINE_LIMIT = 3
    artist = UserFactory()
    tracks = [make_track(artist=artist) for _ in range(8)]
    _, token = token_create(user=artist, name="outage")
    web = Client(REMOTE_ADDR=client_ip)
    web.force_login(artist)
    api = Client(REMOTE_ADDR=client_ip, HTTP_AUTHORIZATION=f"Bearer {token}")
    staff = Client(REMOTE_ADDR=client_ip)
    staff.force_login(policy_admin)
    policy_form = {
        "reason": "Opt-out for data mining",
        **{f"{c}__{u}": r for (c, u), r in SHIPPED_RULES.items()},
        "independent__data-mining": "opt_out",
    }
    preview = staff.post("/audit/policy/", policy_form)
    previewed = preview.text.split('name="previewed" value="')[1].split('"')[0]
    receipts_before = Receipt.objects.count()
    registry = registry_consumer()
    caplog.set_level(logging.WARNING, logger="refrain.doorbell")

    with broker_refusing():
        # when a switch on the list (HTMX) and one on the track page are made
        switched, took_switch = _timed(
            lambda: web.post(
                "/tracks/switch/",
                {"set": f"{tracks[0].public_id}|{GENAI}|granted"},
                HTTP_HX_REQUEST="true",
            )
        )
        posted, took_post = _timed(
            lambda: web.post(
                f"/tracks/{tracks[1].public_id}/consent/",
                {"use": TRAINING, "state": "granted"},
            )
        )
        # and the defaults form, an API PUT, an inline and a background bulk
        # change, and a policy publish
        defaults, took_defaults = _timed(
            lambda: web.post(
                "/settings/consent/",
                {INFERENCE: "granted", "apply_to_existing": "on"},
            )
        )
        put, took_put = _timed(
            lambda: api.put(
                f"/api/v1/me/tracks/{tracks[2].public_id}/consent/{GENAI}",
                data=json.dumps({"state": "denied"}),
                content_type="application/json",
            )
        )
        inline, took_inline = _timed(
            lambda: web.post(
                "/tracks/bulk/",
                {
                    "use": MINING,
                    "state": "denied",
                    "scope": "selected",
                    "tracks": [t.public_id for t in tracks[:3]],
                    "next": "/tracks/",
                },
            )
        )
        background, took_background = _timed(
            lambda: web.post(
                "/tracks/bulk/",
                {
                    "use": TRAINING,
                    "state": "denied",
                    "scope": "all",
                    "confirmed": "yes",
                    "next": "/",
                },
            )
        )
        published, took_publish = _timed(
            lambda: staff.post(
                "/audit/policy/",
                {**policy_form, "previewed": previewed, "confirm": "1"},
            )
        )
        job_page = web.get(background["Location"])

    # then every one answered as its commit did, quickly
    answers = [
        switched.status_code,
        posted.status_code,
        defaults.status_code,
        put.status_code,
        inline.status_code,
        background.status_code,
        published.status_code,
    ]
    assert answers == [200, 302, 302, 200, 302, 302, 302]
    took = [
        took_switch,
        took_post,
        took_defaults,
        took_put,
        took_inline,
        took_background,
        took_publish,
    ]
    assert max(took) < QUICKLY, took
    assert '|granted" hx-post="/tracks/switch/" aria-pressed="true">' in switched.text
    assert put.json()["state"] == "denied"
    assert published["Location"] == "/audit/"
    # and every change is committed, with its receipt waiting to be e-mailed
    assert TrackConsent.objects.get(track=tracks[0], use=GENAI).decision == "granted"
    assert TrackConsent.objects.get(track=tracks[1], use=TRAINING).decision == "granted"
    assert TrackConsent.objects.get(track=tracks[2], use=GENAI).decision == "denied"
    assert TrackConsent.objects.filter(artist=artist, use=INFERENCE).filter(
        eligible=True
    ).count() == len(tracks)
    # the inline bulk change is done (its receipt's doorbell failed, nothing else)
    inline_job, background_job = BulkJob.objects.order_by("pk")
    assert (inline_job.status, inline_job.changed) == ("done", 3)
    assert inline_job.receipt is not None
    # the background one waits for a worker, and its page says so
    assert (background_job.status, background_job.processed) == ("queued", 0)
    assert job_page.status_code == 200
    assert (
        f"Waiting for a worker — 0 of {len(tracks)} tracks changed so far; "
        "it starts automatically." in job_page.text
    )
    version = PolicyVersion.objects.get(number=2)
    assert version.applied_at is None
    pending = Receipt.objects.filter(emailed_at__isnull=True)
    assert pending.count() == Receipt.objects.count() - receipts_before == 5
    assert mail.outbox == []
    # and each refused publish was logged, not raised
    refused = [r for r in caplog.records if "left to the beat sweep" in r.message]
    assert sorted({r.args[0] for r in refused}) == [
        "consent.apply_policy",
        "consent.propagate",
        "consent.run_bulk_change",
        "consent.send_pending_receipts",
    ]

    # when the broker is back and beat runs each sweep (the job has waited
    # longer than a few seconds by then), and a worker takes what they ring
    BulkJob.objects.filter(pk=background_job.pk).update(
        created_at=timezone.now() - timedelta(seconds=30)
    )
    with private_broker(tmp_path):
        send_pending_receipts()
        resume_policy_runs()
        resume_bulk_jobs()
        ran = drain()
        # (the propagation sweep last: the policy run and the bulk job above
        # recorded changes of their own)
        sweep_propagation()
        ran += drain()

    # then everything pending is finished: the policy applied, the job done,
    # every receipt e-mailed once, and the registry told every change
    assert sorted({name for name, _ in ran}) == [
        "consent.apply_policy",
        "consent.deliver",
        "consent.propagate",
        "consent.run_bulk_change",
        "consent.send_pending_receipts",
    ]
    told = dict(
        SyncState.objects.filter(consumer=registry).values_list(
            "track_id", "delivered_version"
        )
    )
    assert told == {t.pk: t.consent_version for t in Track.objects.all()}
    assert sorted(
        RegistryEntry.objects.values_list("track_id", "use", "eligible")
    ) == sorted(TrackConsent.objects.values_list("track_id", "use", "eligible"))
    version.refresh_from_db()
    assert version.applied_at is not None
    background_job.refresh_from_db()
    assert (background_job.status, background_job.processed) == ("done", len(tracks))
    assert background_job.changed == len(tracks)
    assert Receipt.objects.filter(emailed_at__isnull=True).count() == 0
    # (one e-mail per burst: the five that waited, then the background job's)
    receipt_mails = [m for m in mail.outbox if "consent receipt" in m.subject]
    assert [m.to for m in receipt_mails] == [[artist.email]] * 2
    new_receipts = Receipt.objects.order_by("pk")[receipts_before:]
    assert len(new_receipts) == 6
    for receipt in new_receipts:
        link = f"/receipts/{receipt.public_id}.json"
        assert sum(link in m.body for m in receipt_mails) == 1
    bulk_rows = LedgerEntry.objects.filter(request_id=background_job.request_id)
    assert sorted(bulk_rows.values_list("track_id", flat=True)) == sorted(
        t.pk for t in tracks
    )
    assert verify_chains().breaks == []
