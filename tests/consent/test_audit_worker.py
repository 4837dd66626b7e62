"""The audit's background work on a real Celery worker: the first visit to
the transparency page rings the worker that computes the figures, and a
policy admin's "Run now" has a worker run the check and record who asked."""

import pytest
from django.test import Client

from accounts.services import GROUP_POLICY_ADMINS
from config import doorbell
from consent.models import AuditSnapshot, CheckRun
from consent.services import consent_set
from tests.consent.brokers import private_broker
from tests.consent.conftest import _staff_in
from tests.consent.helpers import GENAI
from tests.drills import Workers, database_for_workers, wait_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_worker_computes_the_figures_and_runs_a_check_on_demand(
    tmp_path, make_track, monkeypatch
):
    # given a catalogue whose figures were never computed
    monkeypatch.setattr(doorbell, "_next_ring", {})
    monkeypatch.setattr(doorbell, "_trailing_at", {})
    track = make_track()
    consent_set(track=track, use=GENAI, state="granted", actor=None, source="web")
    assert not AuditSnapshot.objects.exists()
    admin = _staff_in(GROUP_POLICY_ADMINS)
    visitor, staff = Client(), Client()
    staff.force_login(admin)

    with private_broker(tmp_path) as broker:
        database, _ = database_for_workers(tmp_path)
        workers = Workers(tmp_path, database, broker, {})
        try:
            workers.start_ready()
            # when anyone opens the public page, and a policy admin asks for a
            # check of the stored consent
            first = visitor.get("/transparency/").content.decode()
            assert "The figures are being computed" in first
            staff.post("/audit/checks/run/", {"kind": CheckRun.Kind.CONSENT})
            wait_for(AuditSnapshot.objects.exists, "the figures' refresh", workers)
            wait_for(
                lambda: CheckRun.objects.filter(
                    kind=CheckRun.Kind.CONSENT, finished_at__isnull=False
                ).exists(),
                "the check run on demand",
                workers,
            )
        finally:
            workers.stop_all()

    # then the page shows the figures the worker computed, as of its time
    snapshot = AuditSnapshot.objects.get()
    assert snapshot.triggered_by == "page"
    assert snapshot.figures["side_by_side"][f"independent:{GENAI}"]["granted"] == 1
    page = visitor.get("/transparency/").content.decode()
    assert "The figures are being computed" not in page
    assert "Figures as of" in page
    run = CheckRun.objects.get(kind=CheckRun.Kind.CONSENT)
    assert run.triggered_by == admin.email and run.ok
