"""The thin Celery tasks and the beat schedule that names them."""

from datetime import timedelta

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.core import mail
from django.utils import timezone

from config.celery_app import app
from consent.models import IdempotencyRecord, LedgerAnchor
from consent.services import consent_set, ledger_anchor_create
from consent.tasks import anchor_ledger, purge_idempotency_records
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _record(user, key: str, *, age: timedelta) -> None:
    IdempotencyRecord.objects.create(
        user=user,
        key=key,
        fingerprint="0" * 64,
        status=200,
        response={},
        created_at=timezone.now() - age,
    )


def test_the_purge_task_removes_records_older_than_a_day_and_keeps_newer_ones():
    # given records from just past a day ago, just under it and a minute ago
    user = UserFactory()
    _record(user, "stale", age=timedelta(hours=24, minutes=1))
    _record(user, "almost-stale", age=timedelta(hours=23, minutes=59))
    _record(user, "fresh", age=timedelta(minutes=1))

    # when beat's task runs, through Celery as a worker would run it
    purge_idempotency_records.apply().get()

    # then only the record older than a day is gone, and a second run
    # changes nothing
    kept = {"almost-stale", "fresh"}
    assert set(IdempotencyRecord.objects.values_list("key", flat=True)) == kept
    purge_idempotency_records.apply().get()
    assert IdempotencyRecord.objects.count() == 2


def test_beat_purges_idempotency_records_every_hour():
    entries = [
        entry
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "consent.purge_idempotency_records"
    ]

    assert len(entries) == 1
    assert entries[0]["schedule"] == 3600.0
    assert purge_idempotency_records.name == "consent.purge_idempotency_records"


def test_every_beat_entry_names_a_registered_task():
    app.loader.import_default_modules()

    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert names - set(app.tasks) == set()


def test_beat_anchors_the_ledger_every_day():
    entries = [
        entry
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "consent.anchor_ledger"
    ]

    assert len(entries) == 1
    assert entries[0]["schedule"] == crontab(hour=4, minute=5)
    assert anchor_ledger.name == "consent.anchor_ledger"


def test_the_anchor_task_takes_an_anchor_and_mails_the_auditors(make_track, auditor):
    # given a ledger with one change, an earlier anchor whose e-mail was lost
    artist = UserFactory()
    track = make_track(artist=artist)
    consent_set(track=track, use="ai-training", state="granted", actor=artist,
                source="web")  # fmt: skip
    lost = ledger_anchor_create()

    # when beat's task runs, through Celery as a worker would run it
    anchor_ledger.apply().get()

    # then there is a new anchor, and both went to the auditor, once each
    new = LedgerAnchor.objects.exclude(pk=lost.pk).get()
    assert (new.track_count, new.row_count, new.root) == (1, 1, lost.root)
    assert sorted(m.subject for m in mail.outbox) == sorted(
        [f"[Refrain] Ledger anchor {lost.pk}", f"[Refrain] Ledger anchor {new.pk}"]
    )
    assert {tuple(m.to) for m in mail.outbox} == {(auditor.email,)}
    assert LedgerAnchor.objects.filter(emailed_at__isnull=True).count() == 0
