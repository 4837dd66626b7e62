"""Two runs of one policy version at once: the second returns at once instead
of waiting behind the first and holding a worker (the sweep rings a running
version every minute). PostgreSQL only: SQLite's writers queue on one lock."""

import threading

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from consent.models import PolicyVersion
from consent.policy import policy_current
from consent.services import policy_apply, policy_publish
from tests.factories import StaffFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _dsn() -> str:
    db = settings.DATABASES["default"]
    return (
        f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} "
        f"user={db['USER']} dbname={connection.settings_dict['NAME']}"
    )


def test_a_second_run_of_a_running_version_returns_at_once(make_tracks, task_queue):
    # given a published version and a run of it holding the version's row
    make_tracks(3)
    admin = StaffFactory(is_superuser=True)
    rules = {**policy_current().rules, ("independent", "data-mining"): "opt_out"}
    version = policy_publish(rules=rules, actor=admin, reason="Test")
    holding, release = threading.Event(), threading.Event()

    def live_run():
        with psycopg.connect(_dsn()) as other, other.transaction():
            other.execute(
                "SELECT id FROM consent_policyversion WHERE id = %s FOR UPDATE",
                [version.pk],
            )
            holding.set()
            release.wait(timeout=30)

    thread = threading.Thread(target=live_run)
    thread.start()
    try:
        assert holding.wait(timeout=30)

        # when a duplicate run starts, then it returns without waiting or work
        duplicate = policy_apply(version_id=version.pk)
        assert (duplicate.tracks, duplicate.done) == (0, False)
        version.refresh_from_db()
        assert (version.applied_through_track_id, version.applied_at) == (0, None)
    finally:
        release.set()
        thread.join(timeout=30)

    # and once the row is free, a run does the whole version
    finished = policy_apply(version_id=version.pk)
    assert (finished.tracks, finished.done) == (3, True)
    assert PolicyVersion.objects.get(pk=version.pk).applied_at is not None
