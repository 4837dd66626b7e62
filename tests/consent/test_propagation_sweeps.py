"""The propagation sweeps (``consent.propagation.sweeps``): the beat sweep's
fan-out, backfills and replays, waking runners, disabling consumers failing
for days; the nightly reconciliation; the attempt log's purge."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from catalog.models import Track
from consent.models import (
    Consumer,
    DeliveryAttempt,
    PropagationChange,
    SyncState,
)
from consent.propagation import (
    consumer_backfill_step,
    consumer_replay,
    consumers_reconcile,
    delivery_attempts_purge,
    propagation_fan_out,
    propagation_run,
    propagation_sweep,
    sweeps,
)
from consent.propagation.sweeps import DOORBELL_LOCK
from consent.services import consent_set
from tests.consent.helpers import TRAINING, advisory_lock_held_elsewhere

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _only_our_consumers(db):
    """The built-in registry (migration 0018) is left out: each test makes
    the consumers it counts."""
    Consumer.objects.all().delete()


def webhook(name: str = "partner", **fields) -> Consumer:
    return Consumer.objects.create(
        name=name,
        kind=Consumer.Kind.WEBHOOK,
        url=f"https://{name}.example/hook",
        uses=[TRAINING],
        **fields,
    )


def grant(track: Track, state: str = "granted") -> None:
    consent_set(track=track, use=TRAINING, state=state, actor=None, source="web")


def all_delivered(consumer: Consumer) -> None:
    """As after every delivery succeeded: each row at its track's version."""
    for track_id, version in Track.objects.values_list("pk", "consent_version"):
        SyncState.objects.update_or_create(
            consumer=consumer,
            track_id=track_id,
            defaults={
                "desired_version": version,
                "delivered_version": version,
                "next_attempt_at": None,
                "pending_since": None,
            },
        )


def due_tracks(consumer: Consumer) -> set[int]:
    return set(
        SyncState.objects.filter(
            consumer=consumer, next_attempt_at__lte=timezone.now()
        ).values_list("track_id", flat=True)
    )


# --- the beat sweep ---------------------------------------------------------------


def test_the_sweep_fans_out_and_wakes_consumers_with_rows_due(task_queue, make_track):
    # given an active consumer, a paused one and one held back, and two
    # tracks recorded in the outbox
    active = webhook("active")
    paused = webhook("paused", status=Consumer.Status.PAUSED)
    held = webhook("held", hold_until=timezone.now() + timedelta(minutes=5))
    tracks = [make_track(), make_track()]

    # when the sweep runs
    outcome = propagation_sweep()

    # then it fanned out both rows to every consumer and woke the active
    # consumer's runner only
    assert outcome == {"fanned_out": 2, "disabled": [], "rung": [active.pk]}
    assert task_queue.of("deliver") == [(active.pk,)]
    assert PropagationChange.objects.count() == 0
    for consumer in (active, paused, held):
        assert due_tracks(consumer) == {track.pk for track in tracks}

    # and a sweep with nothing new wakes it again (its rows are still due)
    assert propagation_sweep() == {
        "fanned_out": 0,
        "disabled": [],
        "rung": [active.pk],
    }


def test_the_sweep_wakes_nobody_when_nothing_is_due(task_queue, make_track):
    consumer = webhook()
    make_track()
    propagation_fan_out()
    all_delivered(consumer)

    assert propagation_sweep() == {"fanned_out": 0, "disabled": [], "rung": []}
    assert task_queue.of("deliver") == []


def test_a_replay_of_everything_queues_every_track_again(task_queue, make_tracks):
    # given a consumer that has every track delivered
    consumer = webhook()
    tracks = make_tracks(5)
    propagation_fan_out()
    all_delivered(consumer)

    # when it is replayed from the beginning and the sweep runs
    consumer_replay(consumer=consumer, since=None, actor=None)
    outcome = propagation_sweep()

    # then every track is due again (delivered versions kept) and the
    # backfill is finished
    assert due_tracks(consumer) == {track.pk for track in tracks}
    assert set(
        SyncState.objects.filter(consumer=consumer).values_list(
            "desired_version", "delivered_version"
        )
    ) == {(0, 0)}
    assert outcome["rung"] == [consumer.pk]
    consumer.refresh_from_db()
    assert (consumer.backfill_after, consumer.backfill_since) == (None, None)


def test_a_backfill_walks_the_tracks_in_chunks(make_tracks):
    consumer = webhook()
    tracks = sorted(make_tracks(5), key=lambda track: track.pk)
    propagation_fan_out()
    all_delivered(consumer)
    Consumer.objects.filter(pk=consumer.pk).update(backfill_after=0)

    steps = []
    while True:
        more = consumer_backfill_step(consumer_id=consumer.pk, chunk=2)
        steps.append((more, Consumer.objects.get(pk=consumer.pk).backfill_after))
        if not more:
            break

    assert steps == [(True, tracks[1].pk), (True, tracks[3].pk), (False, None)]
    assert due_tracks(consumer) == {track.pk for track in tracks}
    # and with no backfill in progress a step does nothing
    assert consumer_backfill_step(consumer_id=consumer.pk) is False


def test_a_replay_since_a_date_queues_tracks_changed_or_uploaded_since(
    task_queue, make_track
):
    # given tracks uploaded long ago, one of them changed long ago too, and a
    # consumer that has them all
    consumer = webhook()
    untouched, changed_before, changed_after = make_track(), make_track(), make_track()
    grant(changed_before)
    Track.objects.filter(
        pk__in=[untouched.pk, changed_before.pk, changed_after.pk]
    ).update(uploaded_at=timezone.now() - timedelta(days=10))
    since = timezone.now()
    # and, after the date, a change of one and a new upload
    grant(changed_after)
    uploaded_after = make_track()
    propagation_fan_out()
    all_delivered(consumer)

    # when it is replayed since the date
    consumer_replay(consumer=consumer, since=since, actor=None)
    propagation_sweep()

    # then exactly the track changed since and the one uploaded since are due
    assert due_tracks(consumer) == {changed_after.pk, uploaded_after.pk}
    consumer.refresh_from_db()
    assert (consumer.backfill_after, consumer.backfill_since) == (None, None)


def test_a_consumer_failing_for_days_is_disabled_and_admins_told_once(
    task_queue, policy_admin, django_capture_on_commit_callbacks
):
    # given a consumer failing for 5 days and one failing for 4
    long = webhook("long", failing_since=timezone.now() - timedelta(days=5, minutes=1))
    short = webhook("short", failing_since=timezone.now() - timedelta(days=4))

    # when the sweep runs (twice)
    with django_capture_on_commit_callbacks(execute=True):
        first = propagation_sweep()
    with django_capture_on_commit_callbacks(execute=True):
        second = propagation_sweep()

    # then the first is disabled with a reason, the second untouched
    assert first["disabled"] == [long.pk]
    assert second["disabled"] == []
    long.refresh_from_db()
    assert long.status == Consumer.Status.DISABLED
    assert long.status_reason == "Every delivery failed for 5 days: disabled."
    short.refresh_from_db()
    assert short.status == Consumer.Status.ACTIVE
    # and the policy admins got one e-mail
    assert len(mail.outbox) == 1
    (message,) = mail.outbox
    assert message.to == [policy_admin.email]
    assert message.subject == "Consumer “long” disabled after failing for days"
    assert "https://long.example/hook" in message.body


# --- the nightly reconciliation ---------------------------------------------------


def test_reconcile_requeues_exactly_what_was_made_wrong(task_queue, make_tracks):
    # given a consumer with four tracks delivered
    consumer = webhook()
    lowered, removed, fine, queued = make_tracks(4)
    for track in (lowered, removed, fine, queued):
        grant(track)
    propagation_fan_out()
    all_delivered(consumer)
    # and, behind the services' back, one delivered version lowered and one
    # sync row deleted; one row already queued (a retry on its way)
    SyncState.objects.filter(consumer=consumer, track=lowered).update(
        delivered_version=0
    )
    SyncState.objects.filter(consumer=consumer, track=removed).delete()
    later = timezone.now() + timedelta(minutes=5)
    SyncState.objects.filter(consumer=consumer, track=queued).update(
        delivered_version=0, next_attempt_at=later
    )

    # when the reconciliation runs
    found = consumers_reconcile()

    # then exactly the two are due again, the count recorded
    assert found == {consumer.pk: 2}
    assert due_tracks(consumer) == {lowered.pk, removed.pk}
    assert SyncState.objects.get(consumer=consumer, track=queued).next_attempt_at == (
        later
    )
    consumer.refresh_from_db()
    assert consumer.reconciled_requeued == 2
    assert consumer.reconciled_at is not None
    assert task_queue.of("deliver") == [(consumer.pk,)]
    recreated = SyncState.objects.get(consumer=consumer, track=removed)
    assert (recreated.desired_version, recreated.delivered_version) == (1, -1)


def test_reconcile_counts_nothing_when_everything_is_delivered_or_on_its_way(
    make_tracks,
):
    # given every track delivered, and a change still in the outbox
    consumer = webhook()
    tracks = make_tracks(3)
    propagation_fan_out()
    all_delivered(consumer)
    grant(tracks[0])

    # when the reconciliation runs, it fans the change out first and counts
    # nothing
    assert consumers_reconcile() == {consumer.pk: 0}
    consumer.refresh_from_db()
    assert consumer.reconciled_requeued == 0
    assert due_tracks(consumer) == {tracks[0].pk}


def test_reconcile_leaves_dead_letters_to_a_replay(make_tracks):
    consumer = webhook()
    (track,) = make_tracks(1)
    grant(track)
    propagation_fan_out()
    SyncState.objects.filter(consumer=consumer, track=track).update(
        next_attempt_at=None, dead_at=timezone.now()
    )

    assert consumers_reconcile() == {consumer.pk: 0}
    assert SyncState.objects.get(consumer=consumer, track=track).dead_at is not None


# --- the attempt log --------------------------------------------------------------


def test_purge_deletes_attempts_older_than_30_days_only():
    consumer = webhook()
    now = timezone.now()
    for days in (31, 30.9, 29, 0):
        DeliveryAttempt.objects.create(
            consumer=consumer,
            started_at=now - timedelta(days=days),
            outcome=DeliveryAttempt.Outcome.DELIVERED,
        )

    assert delivery_attempts_purge() == 2

    left = sorted(
        round((now - started).total_seconds() / 86400)
        for started in DeliveryAttempt.objects.values_list("started_at", flat=True)
    )
    assert left == [0, 29]


# --- one doorbell runner at a time ------------------------------------------------


@pytest.mark.postgres
def test_a_doorbell_rung_while_another_runs_returns_at_once(task_queue, make_track):
    # given a consumer, two recorded changes, and another runner holding the
    # doorbell's lock on its own connection
    consumer = webhook()
    make_track(), make_track()
    with advisory_lock_held_elsewhere(DOORBELL_LOCK):
        # when the doorbell rings here
        taken = propagation_run()

        # then it took nothing and woke nobody: the holder does it
        assert taken == 0
        assert PropagationChange.objects.count() == 2
        assert task_queue.of("deliver") == []

    # and once the holder is gone, the next ring takes both and wakes the
    # consumer
    assert propagation_run() == 2
    assert due_tracks(consumer) == set(Track.objects.values_list("pk", flat=True))
    assert task_queue.of("deliver") == [(consumer.pk,)]


def test_a_backlog_is_taken_in_full_batches_and_handed_on_when_time_is_up(
    task_queue, make_tracks, settings, monkeypatch
):
    # given 12 recorded changes, batches of 5 and no time to run
    consumer = webhook()
    make_tracks(12)
    settings.REFRAIN_DELIVERY_RUN_SECONDS = 0
    monkeypatch.setattr(sweeps, "BATCH", 5)

    # when the doorbell rings
    taken = propagation_run()

    # then it took one full batch, woke the consumer, and rang itself again
    assert taken == 5
    assert task_queue.of("deliver") == [(consumer.pk,)]
    assert task_queue.of("propagate") == [()]

    # and with time to run, the next ring takes the rest
    settings.REFRAIN_DELIVERY_RUN_SECONDS = 10
    assert propagation_run() == 7
    assert PropagationChange.objects.count() == 0


@pytest.mark.postgres
def test_the_sweep_fans_out_even_while_the_doorbell_is_held(task_queue, make_track):
    # given a consumer, two recorded changes, and the doorbell's lock held on
    # another connection (a runner at work, or one that never let go)
    consumer = webhook()
    make_track(), make_track()
    with advisory_lock_held_elsewhere(DOORBELL_LOCK):
        # when beat sweeps
        outcome = propagation_sweep()

        # then the safety net did not wait for the doorbell: both are fanned
        # out and the consumer woken
        assert outcome["fanned_out"] == 2
        assert outcome["rung"] == [consumer.pk]
        assert PropagationChange.objects.count() == 0
