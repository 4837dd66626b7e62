"""Delivering to a consumer (``consent.propagation.delivery``), in process,
to a real HTTP receiver on 127.0.0.1 (``tests/consent/http_receiver.py``):
claims, forward-only versions, merged toggles, retries on schedule, dead
letters, 410, Retry-After, holds, one runner per consumer, leases, payloads,
signatures, the attempt log, and the built-in registry."""

from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone
from standardwebhooks.webhooks import WebhookVerificationError

from catalog.models import Track
from consent.models import (
    Consumer,
    DeliveryAttempt,
    PropagationChange,
    RegistryEntry,
    SyncState,
)
from consent.propagation import (
    claim_deliver,
    consumer_deliver,
    consumer_rotate_secret,
    propagation_fan_out,
    sync_claim,
)
from consent.propagation.payloads import TrackState, message_id
from consent.propagation.registry import registry_apply
from consent.propagation.webhooks import secret_new
from consent.services import consent_set
from tests.consent.helpers import GENAI, INFERENCE, MINING, TRAINING

pytestmark = pytest.mark.django_db

SCHEDULE = [5.0, 300.0, 1800.0]


@pytest.fixture(autouse=True)
def _short_schedule(settings):
    settings.REFRAIN_WEBHOOK_RETRY_SCHEDULE = SCHEDULE


def partner(receiver, *, uses=(TRAINING,), name="partner") -> Consumer:
    return Consumer.objects.create(
        name=name,
        kind=Consumer.Kind.WEBHOOK,
        url=receiver.url,
        uses=list(uses),
        secret=secret_new(),
    )


def grant(track: Track, use: str = TRAINING, state: str = "granted") -> None:
    consent_set(track=track, use=use, state=state, actor=None, source="web")


def row(consumer: Consumer, track: Track) -> SyncState:
    return SyncState.objects.get(consumer=consumer, track=track)


def make_due(consumer: Consumer) -> None:
    """As the clock would: every waiting row and the consumer's hold are past."""
    past = timezone.now() - timedelta(seconds=1)
    SyncState.objects.filter(consumer=consumer, next_attempt_at__isnull=False).update(
        next_attempt_at=past
    )
    Consumer.objects.filter(pk=consumer.pk).update(hold_until=None)


def attempts_of(consumer: Consumer) -> list[tuple]:
    return list(
        DeliveryAttempt.objects.filter(consumer=consumer)
        .order_by("started_at", "pk")
        .values_list("outcome", "status_code", "tracks")
    )


def within_jitter(at, base: float, before, after) -> bool:
    """``at`` is ``base`` seconds (±10 %) after a moment in [before, after]."""
    return (
        before + timedelta(seconds=base * 0.9)
        <= at
        <= after + timedelta(seconds=base * 1.1)
    )


# --- a delivery -------------------------------------------------------------------


def test_a_2xx_delivers_the_current_state_signed_and_logged(receiver, make_track):
    # given a partner for training and a track granted for it
    consumer = partner(receiver)
    track = make_track()
    grant(track)
    propagation_fan_out()

    # when its runner delivers
    assert consumer_deliver(consumer_id=consumer.pk) == 1

    # then one signed request carried the track's state for training only
    (request,) = receiver.received
    assert request.path == "/hook"
    assert request.verify(consumer.secret) == {
        "type": "consent.state",
        "data": {
            "tracks": [
                {
                    "track": track.public_id,
                    "isrc": track.isrc,
                    "consent_version": 1,
                    "eligible": {TRAINING: True},
                }
            ]
        },
    }
    assert request.headers["webhook-id"] == message_id(
        consumer_id=consumer.pk, body=request.body.decode()
    )
    # and the row is delivered and no longer due
    state = row(consumer, track)
    assert (state.desired_version, state.delivered_version) == (1, 1)
    assert (state.next_attempt_at, state.pending_since, state.attempts) == (
        None,
        None,
        0,
    )
    assert (state.lease_token, state.lease_expires_at) == ("", None)
    # and the attempt is logged with its lag
    (attempt,) = DeliveryAttempt.objects.filter(consumer=consumer)
    assert (attempt.outcome, attempt.status_code, attempt.tracks) == (
        "delivered",
        204,
        1,
    )
    assert attempt.message_id == request.headers["webhook-id"]
    assert attempt.lag_ms is not None
    assert 0 <= attempt.lag_ms < 60_000
    consumer.refresh_from_db()
    assert consumer.last_success_at is not None
    assert consumer.delivering_until is None


def test_the_payload_holds_only_the_consumers_uses(receiver, make_track):
    consumer = partner(receiver, uses=(MINING, GENAI))
    track = make_track()
    grant(track, MINING)
    propagation_fan_out()

    consumer_deliver(consumer_id=consumer.pk)

    (request,) = receiver.received
    (sent,) = request.tracks()
    # (canonical JSON: keys sorted, so the same state is the same body)
    assert sent["eligible"] == {GENAI: False, MINING: True}
    assert f'"{INFERENCE}"' not in request.body.decode()
    assert f'"{TRAINING}"' not in request.body.decode()


def test_rapid_toggles_make_one_request_with_the_latest_state(receiver, make_track):
    # given five changes of one track before any delivery
    consumer = partner(receiver)
    track = make_track()
    for state in ("granted", "denied", "granted", "denied", "granted"):
        grant(track, state=state)
    propagation_fan_out()

    # when the runner delivers
    consumer_deliver(consumer_id=consumer.pk)

    # then one request carried version 5, eligible
    assert len(receiver.received) == 1
    assert receiver.received[0].tracks() == [
        {
            "track": track.public_id,
            "isrc": track.isrc,
            "consent_version": 5,
            "eligible": {TRAINING: True},
        }
    ]
    assert row(consumer, track).delivered_version == 5


def test_many_tracks_go_in_batches(receiver, make_tracks, settings):
    settings.REFRAIN_DELIVERY_BATCH_SIZE = 2
    consumer = partner(receiver)
    tracks = make_tracks(5)
    propagation_fan_out()

    assert consumer_deliver(consumer_id=consumer.pk) == 5

    assert [len(request.tracks()) for request in receiver.received] == [2, 2, 1]
    assert set(
        SyncState.objects.filter(consumer=consumer).values_list(
            "delivered_version", flat=True
        )
    ) == {0}
    assert SyncState.objects.filter(consumer=consumer).count() == len(tracks)


def test_an_older_send_never_moves_the_delivered_version_back(receiver, make_track):
    # given a claimed row whose track is at version 1
    consumer = partner(receiver)
    track = make_track()
    grant(track)
    propagation_fan_out()
    claim = sync_claim(consumer_id=consumer.pk, limit=10, now=timezone.now())

    # when, before this runner's answer, version 3 was acknowledged already
    # (another runner, after this lease ran out)
    SyncState.objects.filter(consumer=consumer, track=track).update(
        desired_version=3, delivered_version=3
    )
    assert claim_deliver(consumer=Consumer.objects.get(pk=consumer.pk), claim=claim)

    # then version 1 was sent and the row stays at 3
    assert receiver.received[0].tracks()[0]["consent_version"] == 1
    state = row(consumer, track)
    assert state.delivered_version == 3
    assert state.next_attempt_at is None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_change_committed_while_waiting_for_the_answer_stays_due(
    receiver, make_track, task_queue
):
    # given a partner and a track granted, fanned out
    consumer = partner(receiver)
    track = make_track()
    grant(track)
    propagation_fan_out()

    # when the track is denied and fanned out (another connection) while the
    # runner waits for the endpoint's answer to version 1
    def change_meanwhile():
        if len(receiver.received) == 1:
            grant(Track.objects.get(pk=track.pk), state="denied")
            propagation_fan_out()
        connections.close_all()

    receiver.on_request = change_meanwhile
    consumer_deliver(consumer_id=consumer.pk)

    # then the row is due again and the runner rang itself, behind whatever
    # queued meanwhile
    assert [r.tracks()[0]["consent_version"] for r in receiver.received] == [1]
    assert task_queue.of("deliver") == [(consumer.pk,)]
    assert row(consumer, track).next_attempt_at is not None

    # and that ring sends version 2
    consumer_deliver(consumer_id=consumer.pk)
    assert [r.tracks()[0]["consent_version"] for r in receiver.received] == [1, 2]
    assert receiver.received[1].tracks()[0]["eligible"] == {TRAINING: False}
    state = row(consumer, track)
    assert (state.desired_version, state.delivered_version) == (2, 2)
    assert state.next_attempt_at is None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_change_while_waiting_leaves_the_row_due_after_the_answer(
    receiver, make_track
):
    # given a claim of version 1 (the runner's own steps, one by one)
    consumer = partner(receiver)
    track = make_track()
    grant(track)
    propagation_fan_out()
    claim = sync_claim(consumer_id=consumer.pk, limit=10, now=timezone.now())

    def change_meanwhile():
        grant(Track.objects.get(pk=track.pk), state="denied")
        propagation_fan_out()
        connections.close_all()

    receiver.on_request = change_meanwhile

    # when version 1 is acknowledged after version 2 was committed
    before = timezone.now()
    assert claim_deliver(consumer=consumer, claim=claim)

    # then version 1 is recorded and the row is due again at once
    state = row(consumer, track)
    assert (state.desired_version, state.delivered_version) == (2, 1)
    assert before <= state.next_attempt_at <= timezone.now()
    assert state.lease_token == ""


# --- failures ---------------------------------------------------------------------


def test_failures_wait_per_the_schedule_then_dead_letter(receiver, make_track):
    # given a partner that always answers 503
    consumer = partner(receiver)
    track = make_track()
    propagation_fan_out()
    receiver.answer(503)

    # when it fails once per step of the schedule
    for number, base in enumerate(SCHEDULE, start=1):
        make_due(consumer)
        before = timezone.now()
        assert consumer_deliver(consumer_id=consumer.pk) == 0
        after = timezone.now()

        # then the row waits that step (±10 %), and so does the consumer (at
        # most the probe interval)
        state = row(consumer, track)
        assert state.attempts == number
        assert state.last_error == "HTTP 503"
        assert state.dead_at is None
        assert within_jitter(state.next_attempt_at, base, before, after)
        assert state.lease_token == ""
        consumer.refresh_from_db()
        assert consumer.consecutive_failures == number
        assert within_jitter(consumer.hold_until, min(base, 300.0), before, after)

    # when the schedule is used up, the row is dead-lettered
    make_due(consumer)
    before = timezone.now()
    consumer_deliver(consumer_id=consumer.pk)
    state = row(consumer, track)
    assert state.attempts == len(SCHEDULE) + 1
    assert state.next_attempt_at is None
    assert before <= state.dead_at <= timezone.now()
    assert state.delivered_version == -1
    # and every attempt was logged, the consumer still active
    assert attempts_of(consumer) == [("failed", 503, 1)] * 4
    consumer.refresh_from_db()
    assert consumer.status == Consumer.Status.ACTIVE
    assert consumer.failing_since is not None


def test_a_retry_of_the_same_state_carries_the_same_message_id(receiver, make_track):
    # given a partner that fails once, then accepts
    consumer = partner(receiver)
    track = make_track()
    propagation_fan_out()
    receiver.answer(500, 200)

    consumer_deliver(consumer_id=consumer.pk)
    make_due(consumer)
    consumer_deliver(consumer_id=consumer.pk)

    # then both requests are the same message; the row is delivered and the
    # failure streak is over
    first, second = receiver.received
    assert first.body == second.body
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert attempts_of(consumer) == [("failed", 500, 1), ("delivered", 200, 1)]
    state = row(consumer, track)
    assert (state.delivered_version, state.attempts, state.last_error) == (0, 0, "")
    consumer.refresh_from_db()
    assert (consumer.consecutive_failures, consumer.failing_since) == (0, None)
    assert consumer.hold_until is None

    # and new content is a new message
    grant(track)
    propagation_fan_out()
    consumer_deliver(consumer_id=consumer.pk)
    assert receiver.received[2].headers["webhook-id"] != first.headers["webhook-id"]


def test_a_410_disables_the_consumer_after_one_attempt(receiver, make_track):
    consumer = partner(receiver)
    make_track()
    propagation_fan_out()
    receiver.answer(410)

    consumer_deliver(consumer_id=consumer.pk)

    consumer.refresh_from_db()
    assert consumer.status == Consumer.Status.DISABLED
    assert consumer.status_reason == "The endpoint answered 410 Gone: disabled at once."
    assert attempts_of(consumer) == [("gone", 410, 1)]

    # and nothing more is sent, even with rows due
    make_due(consumer)
    assert consumer_deliver(consumer_id=consumer.pk) == 0
    assert len(receiver.received) == 1


def test_retry_after_holds_the_row_and_the_consumer(receiver, make_track):
    # given a partner that answers 429 with Retry-After: 120
    consumer = partner(receiver)
    track = make_track()
    propagation_fan_out()
    receiver.answer((429, {"Retry-After": "120"}), 204)

    before = timezone.now()
    consumer_deliver(consumer_id=consumer.pk)
    after = timezone.now()

    # then the row and the consumer wait 120 s, not the schedule's 5 s
    state = row(consumer, track)
    assert before + timedelta(seconds=120) <= state.next_attempt_at
    assert state.next_attempt_at <= after + timedelta(seconds=120)
    consumer.refresh_from_db()
    assert before + timedelta(seconds=120) <= consumer.hold_until
    assert consumer.hold_until <= after + timedelta(seconds=120)

    # and while held, a runner sends nothing, even for a row due now
    other = make_track()
    propagation_fan_out()
    assert row(consumer, other).next_attempt_at <= timezone.now()
    assert consumer_deliver(consumer_id=consumer.pk) == 0
    assert len(receiver.received) == 1

    # when the hold is over, both go
    make_due(consumer)
    assert consumer_deliver(consumer_id=consumer.pk) == 2
    assert len(receiver.received[1].tracks()) == 2


def test_one_failing_consumer_does_not_hold_back_another(receiver, make_track):
    failing = partner(receiver, name="failing")
    failing.url = receiver.url.replace("/hook", "/failing")
    failing.save()
    working = partner(receiver, name="working")
    track = make_track()
    propagation_fan_out()

    # (one receiver, answering in turn: the failing consumer goes first)
    receiver.answer(503, 204)
    consumer_deliver(consumer_id=failing.pk)
    consumer_deliver(consumer_id=working.pk)

    assert row(failing, track).attempts == 1
    assert row(working, track).delivered_version == 0
    assert [r.path for r in receiver.received] == ["/failing", "/hook"]


def test_an_unreachable_endpoint_is_a_failure_with_its_error(receiver, make_track):
    consumer = partner(receiver)
    consumer.url = "http://127.0.0.1:9/closed"
    consumer.save()
    track = make_track()
    propagation_fan_out()

    consumer_deliver(consumer_id=consumer.pk)

    state = row(consumer, track)
    assert state.attempts == 1
    assert "NewConnectionError" in state.last_error
    (attempt,) = DeliveryAttempt.objects.filter(consumer=consumer)
    assert (attempt.outcome, attempt.status_code) == ("failed", None)
    assert "NewConnectionError" in attempt.error


# --- one runner, leases -----------------------------------------------------------


def test_a_second_runner_returns_at_once_while_the_turn_is_held(receiver, make_track):
    consumer = partner(receiver)
    track = make_track()
    propagation_fan_out()
    held = timezone.now() + timedelta(seconds=60)
    Consumer.objects.filter(pk=consumer.pk).update(delivering_until=held)

    assert consumer_deliver(consumer_id=consumer.pk) == 0

    assert receiver.received == []
    assert row(consumer, track).next_attempt_at <= timezone.now()
    assert Consumer.objects.get(pk=consumer.pk).delivering_until == held


def test_a_stale_turn_past_its_lease_is_taken_over(receiver, make_track):
    consumer = partner(receiver)
    track = make_track()
    propagation_fan_out()
    Consumer.objects.filter(pk=consumer.pk).update(
        delivering_until=timezone.now() - timedelta(seconds=1)
    )

    assert consumer_deliver(consumer_id=consumer.pk) == 1

    assert len(receiver.received) == 1
    assert row(consumer, track).delivered_version == 0
    assert Consumer.objects.get(pk=consumer.pk).delivering_until is None


def test_a_claimed_row_is_due_again_when_its_lease_ends(receiver, make_track, settings):
    # given a row claimed by a runner that never answered
    consumer = partner(receiver)
    track = make_track()
    propagation_fan_out()
    now = timezone.now()
    first = sync_claim(consumer_id=consumer.pk, limit=10, now=now)
    lease = timedelta(seconds=settings.REFRAIN_DELIVERY_LEASE_SECONDS)
    state = row(consumer, track)
    assert state.lease_token == first.token
    assert state.next_attempt_at == state.lease_expires_at == now + lease

    # then before the lease ends nobody else claims it
    assert sync_claim(consumer_id=consumer.pk, limit=10, now=now + lease / 2) is None

    # and after it ends another runner does
    second = sync_claim(
        consumer_id=consumer.pk, limit=10, now=now + lease + timedelta(seconds=1)
    )
    assert second.track_ids == [track.pk]
    assert second.token != first.token

    # when the first runner answers late, its 2xx still counts (forward
    # only) but the second runner's lease is left alone
    assert claim_deliver(consumer=consumer, claim=first)
    state = row(consumer, track)
    assert state.delivered_version == 0
    assert state.lease_token == second.token


# --- signatures -------------------------------------------------------------------


def test_during_a_rotation_both_secrets_sign(receiver, make_track):
    # given a partner whose secret was rotated
    consumer = partner(receiver)
    old = consumer.secret
    rotated = consumer_rotate_secret(consumer=consumer, actor=None)
    make_track()
    propagation_fan_out()

    consumer_deliver(consumer_id=consumer.pk)

    # then the request carries two signatures, each verifying with its secret
    (request,) = receiver.received
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert request.verify(old)["type"] == "consent.state"
    assert request.verify(rotated.secret)["type"] == "consent.state"
    with pytest.raises(WebhookVerificationError):
        request.verify(secret_new())


def test_after_the_grace_period_only_the_new_secret_signs(receiver, make_track):
    consumer = partner(receiver)
    old = consumer.secret
    rotated = consumer_rotate_secret(consumer=consumer, actor=None)
    Consumer.objects.filter(pk=consumer.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    make_track()
    propagation_fan_out()

    consumer_deliver(consumer_id=consumer.pk)

    (request,) = receiver.received
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    assert request.verify(rotated.secret)["type"] == "consent.state"
    with pytest.raises(WebhookVerificationError):
        request.verify(old)


def test_a_tampered_body_does_not_verify(receiver, make_track):
    from tests.consent.http_receiver import Received

    consumer = partner(receiver)
    make_track()
    propagation_fan_out()
    consumer_deliver(consumer_id=consumer.pk)
    (request,) = receiver.received

    tampered = Received(
        request.path,
        request.headers,
        request.body.replace(b'"consent_version":0', b'"consent_version":9'),
    )
    assert tampered.body != request.body
    with pytest.raises(WebhookVerificationError):
        tampered.verify(consumer.secret)


# --- the built-in registry --------------------------------------------------------


def registry() -> Consumer:
    consumer, _ = Consumer.objects.get_or_create(
        kind=Consumer.Kind.REGISTRY,
        defaults={
            "name": "Training-data registry",
            "uses": [GENAI, TRAINING, INFERENCE, MINING],
        },
    )
    return consumer


def entries(track: Track) -> dict[str, tuple[bool, int]]:
    return {
        use: (eligible, version)
        for use, eligible, version in RegistryEntry.objects.filter(
            track=track
        ).values_list("use", "eligible", "consent_version")
    }


def test_the_registry_is_delivered_by_the_same_runner(make_track):
    consumer = registry()
    track = make_track()
    grant(track, MINING)
    propagation_fan_out()

    assert consumer_deliver(consumer_id=consumer.pk) == 1

    assert entries(track) == {
        GENAI: (False, 1),
        TRAINING: (False, 1),
        INFERENCE: (False, 1),
        MINING: (True, 1),
    }
    assert row(consumer, track).delivered_version == 1
    assert attempts_of(consumer) == [("delivered", None, 1)]


def test_the_registry_only_moves_forward(make_track):
    # given the registry told version 3 of a track
    track = make_track()
    registry_apply(
        states=[TrackState(track.pk, track.public_id, None, 3, {MINING: True})]
    )

    # when an older state arrives, then it is ignored
    registry_apply(
        states=[TrackState(track.pk, track.public_id, None, 2, {MINING: False})]
    )
    assert entries(track) == {MINING: (True, 3)}

    # and a newer one is applied
    registry_apply(
        states=[TrackState(track.pk, track.public_id, None, 4, {MINING: False})]
    )
    assert entries(track) == {MINING: (False, 4)}


def test_a_track_deleted_after_its_claim_is_sent_as_nothing(receiver, make_track):
    consumer = partner(receiver)
    kept, deleted = make_track(), make_track()
    propagation_fan_out()
    claim = sync_claim(consumer_id=consumer.pk, limit=10, now=timezone.now())
    Track.objects.filter(pk=deleted.pk).delete()

    assert claim_deliver(consumer=consumer, claim=claim)

    (request,) = receiver.received
    assert [t["track"] for t in request.tracks()] == [kept.public_id]
    assert row(consumer, kept).delivered_version == 0
    assert PropagationChange.objects.count() == 0


def test_a_change_pending_for_weeks_is_delivered_and_logged(receiver, make_track):
    # given a consumer paused for 30 days (longer than 2**31 ms) and resumed
    consumer = partner(receiver)
    track = make_track()
    propagation_fan_out()
    SyncState.objects.filter(consumer=consumer, track=track).update(
        pending_since=timezone.now() - timedelta(days=30)
    )

    # when its runner delivers
    assert consumer_deliver(consumer_id=consumer.pk) == 1

    # then the row is delivered once and the attempt logged with the longest
    # lag the log holds
    assert len(receiver.received) == 1
    assert row(consumer, track).delivered_version == 0
    (attempt,) = DeliveryAttempt.objects.filter(consumer=consumer)
    assert (attempt.outcome, attempt.lag_ms) == ("delivered", 2**31 - 1)


def test_retry_after_as_a_date_is_honoured(receiver, make_track):
    from email.utils import format_datetime

    consumer = partner(receiver)
    track = make_track()
    propagation_fan_out()
    until = timezone.now().replace(microsecond=0) + timedelta(minutes=10)
    receiver.answer((503, {"Retry-After": format_datetime(until, usegmt=True)}))

    consumer_deliver(consumer_id=consumer.pk)

    state = row(consumer, track)
    assert until - timedelta(seconds=2) <= state.next_attempt_at
    assert state.next_attempt_at <= until + timedelta(seconds=1)
    consumer.refresh_from_db()
    assert until - timedelta(seconds=2) <= consumer.hold_until
    assert consumer.hold_until <= until + timedelta(seconds=1)


def test_a_track_with_nothing_to_tell_does_not_keep_the_runner_busy(
    receiver, task_queue, settings
):
    # given a row due for a track without consent rows (nothing to send:
    # a backfill or reconciliation can queue one)
    from tests.factories import TrackFactory

    settings.REFRAIN_DELIVERY_RUN_SECONDS = 1.0
    consumer = partner(receiver)
    track = TrackFactory()
    SyncState.objects.create(
        consumer=consumer,
        track=track,
        desired_version=0,
        next_attempt_at=timezone.now(),
        pending_since=timezone.now(),
    )

    # when its runner runs
    consumer_deliver(consumer_id=consumer.pk)

    # then nothing was sent, the row is no longer due (the nightly
    # reconciliation looks at it again), and the runner did not ring itself
    # to spin on it
    assert receiver.received == []
    state = row(consumer, track)
    assert (state.next_attempt_at, state.delivered_version) == (None, -1)
    assert task_queue.of("deliver") == []
