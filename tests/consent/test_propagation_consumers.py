"""Managing consumers (``consent.propagation.consumers``): the services, not
their pages. Every rejection says why and changes nothing."""

import base64
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from consent.models import Consumer, DeliveryAttempt
from consent.propagation import (
    ConsumerError,
    consumer_create,
    consumer_disable,
    consumer_move,
    consumer_pause,
    consumer_replay,
    consumer_resume,
    consumer_rotate_secret,
    consumer_send_test,
    uses_parse,
)
from tests.consent.helpers import GENAI, INFERENCE, MINING, TRAINING
from tests.dbstate import database_state

pytestmark = pytest.mark.django_db

SECRET = re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$")


def registry() -> Consumer:
    consumer, _ = Consumer.objects.get_or_create(
        kind=Consumer.Kind.REGISTRY,
        defaults={"name": "Training-data registry", "uses": [GENAI]},
    )
    return consumer


def create(**overrides):
    fields = {
        "name": "Partner",
        "url": "https://partner.example/hooks/refrain",
        "uses": [MINING, TRAINING],
        "actor": None,
    }
    return consumer_create(**{**fields, **overrides})


def rejected(call, message: str) -> None:
    """``call`` raises ``ConsumerError(message)`` and changes nothing."""
    before = database_state()
    with pytest.raises(ConsumerError) as raised:
        call()
    assert str(raised.value) == message
    assert database_state() == before


# --- create -----------------------------------------------------------------------


def test_create_stores_an_active_webhook_and_returns_its_secret_once(policy_admin):
    made = create(
        name="  Partner  ", uses="data-mining, ai-training", actor=policy_admin
    )

    consumer = Consumer.objects.get(pk=made.consumer.pk)
    assert consumer.name == "Partner"
    assert consumer.kind == Consumer.Kind.WEBHOOK
    assert consumer.url == "https://partner.example/hooks/refrain"
    assert consumer.uses == [TRAINING, MINING]  # the uses' own order
    assert consumer.status == Consumer.Status.ACTIVE
    assert consumer.created_by == policy_admin
    assert consumer.secret == made.secret
    # it is sent the current state of every track first (a backfill from the
    # first track, not only changes made from now on)
    assert (consumer.backfill_after, consumer.backfill_since) == (0, None)
    # a Standard Webhooks secret: "whsec_" and 32 random bytes in base64
    assert SECRET.match(made.secret)
    assert len(base64.b64decode(made.secret.removeprefix("whsec_"))) == 32
    assert create(name="Other").secret != made.secret


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "Give the consumer a name of 1 to 100 characters."),
        ({"name": "   "}, "Give the consumer a name of 1 to 100 characters."),
        ({"name": "x" * 101}, "Give the consumer a name of 1 to 100 characters."),
        ({"url": ""}, "The URL must start with https:// (or http://)."),
        (
            {"url": "ftp://partner.example/x"},
            "The URL must start with https:// (or http://).",
        ),
        ({"url": "https:///no-host"}, "The URL has no host name."),
        (
            {"url": "https://user:pw@partner.example/"},
            "The URL must not carry a user name or password.",
        ),
        ({"url": "https://partner.example:99999/"}, "This is not a valid URL."),
        (
            {"url": "https://partner.example/" + "a" * 480},
            "The URL is longer than 500 characters.",
        ),
        ({"uses": []}, "Choose at least one use."),
        ({"uses": " , "}, "Choose at least one use."),
        (
            {"uses": [TRAINING, "music-videos"]},
            "Unknown use music-videos: choose from genai-training, ai-training, "
            "ai-inference, data-mining.",
        ),
    ],
)
def test_create_rejects_bad_input_and_changes_nothing(overrides, message):
    rejected(lambda: create(**overrides), message)


def test_create_rejects_a_name_taken_in_any_case():
    create(name="Partner")

    rejected(
        lambda: create(name="PARTNER", url="https://other.example/"),
        "A consumer named “PARTNER” exists already.",
    )
    assert Consumer.objects.filter(kind=Consumer.Kind.WEBHOOK).count() == 1


def test_uses_parse_orders_and_dedupes():
    assert uses_parse(f"{MINING},{GENAI},{MINING}") == [GENAI, MINING]
    assert uses_parse([INFERENCE, " ai-training "]) == [TRAINING, INFERENCE]


# --- the secret -------------------------------------------------------------------


def test_rotate_keeps_the_previous_secret_for_the_grace_period(settings):
    settings.REFRAIN_WEBHOOK_SECRET_GRACE_HOURS = 24
    made = create()

    before = timezone.now()
    rotated = consumer_rotate_secret(consumer=made.consumer, actor=None)
    after = timezone.now()

    consumer = Consumer.objects.get(pk=made.consumer.pk)
    assert SECRET.match(rotated.secret)
    assert rotated.secret != made.secret
    assert consumer.secret == rotated.secret
    assert consumer.previous_secret == made.secret
    assert (
        before + timedelta(hours=24)
        <= consumer.previous_secret_expires_at
        <= after + timedelta(hours=24)
    )


def test_the_registry_has_no_secret_to_rotate():
    consumer = registry()
    rejected(
        lambda: consumer_rotate_secret(consumer=consumer, actor=None),
        "The built-in registry has no secret.",
    )


# --- pause, resume, disable -------------------------------------------------------


def test_pause_then_resume(
    policy_admin, task_queue, django_capture_on_commit_callbacks
):
    consumer = create().consumer

    paused = consumer_pause(consumer=consumer, actor=policy_admin)
    assert paused.status == Consumer.Status.PAUSED
    stored = Consumer.objects.get(pk=consumer.pk)
    assert (stored.status, stored.status_reason) == (
        "paused",
        f"Paused by {policy_admin.email}.",
    )

    # a resume starts afresh (no hold, no failure streak) and wakes the sweep
    Consumer.objects.filter(pk=consumer.pk).update(
        hold_until=timezone.now() + timedelta(hours=1),
        consecutive_failures=4,
        failing_since=timezone.now() - timedelta(days=1),
    )
    with django_capture_on_commit_callbacks(execute=True):
        consumer_resume(consumer=consumer, actor=policy_admin)
    stored.refresh_from_db()
    assert (stored.status, stored.status_reason) == ("active", "")
    assert (stored.hold_until, stored.consecutive_failures, stored.failing_since) == (
        None,
        0,
        None,
    )
    assert task_queue.of("sweep_propagation") == [()]


def test_disable_keeps_its_reason_and_resume_brings_it_back(task_queue):
    consumer = create().consumer

    consumer_disable(consumer=consumer, reason="Partner asked us to stop.")
    stored = Consumer.objects.get(pk=consumer.pk)
    assert (stored.status, stored.status_reason) == (
        "disabled",
        "Partner asked us to stop.",
    )

    consumer_resume(consumer=consumer, actor=None)
    stored.refresh_from_db()
    assert stored.status == Consumer.Status.ACTIVE


# --- replay -----------------------------------------------------------------------


def test_replay_starts_a_backfill_from_a_date(
    task_queue, django_capture_on_commit_callbacks
):
    consumer = create().consumer
    since = timezone.now() - timedelta(days=3)

    with django_capture_on_commit_callbacks(execute=True):
        consumer_replay(consumer=consumer, since=since, actor=None)

    stored = Consumer.objects.get(pk=consumer.pk)
    assert (stored.backfill_after, stored.backfill_since) == (0, since)
    assert task_queue.of("sweep_propagation") == [()]


def test_replay_asked_again_starts_over_with_the_new_date(task_queue):
    consumer = create().consumer
    Consumer.objects.filter(pk=consumer.pk).update(
        backfill_after=1234, backfill_since=timezone.now() - timedelta(days=9)
    )

    consumer_replay(consumer=consumer, since=None, actor=None)

    stored = Consumer.objects.get(pk=consumer.pk)
    assert (stored.backfill_after, stored.backfill_since) == (0, None)


def test_replay_from_a_future_date_is_rejected(task_queue):
    consumer = create().consumer

    rejected(
        lambda: consumer_replay(
            consumer=consumer,
            since=timezone.now() + timedelta(minutes=1),
            actor=None,
        ),
        "The replay date is in the future.",
    )
    assert task_queue.of("sweep_propagation") == []


# --- the test event ---------------------------------------------------------------


def test_send_test_signs_a_test_event_and_logs_it(receiver):
    made = create(url=receiver.url)

    attempt = consumer_send_test(consumer=made.consumer)

    (request,) = receiver.received
    event = request.verify(made.secret)
    assert event["type"] == "refrain.test"
    assert event["data"]["consumer"] == "Partner"
    assert attempt == DeliveryAttempt.objects.get(consumer=made.consumer)
    assert (attempt.outcome, attempt.status_code, attempt.error) == ("test", 204, "")
    assert attempt.message_id == request.headers["webhook-id"]


def test_send_test_logs_the_endpoints_failure(receiver):
    made = create(url=receiver.url)
    receiver.answer(500)

    attempt = consumer_send_test(consumer=made.consumer)

    assert (attempt.outcome, attempt.status_code, attempt.error) == (
        "test",
        500,
        "HTTP 500",
    )


def test_send_test_refuses_a_private_address_when_not_allowed(settings):
    settings.REFRAIN_WEBHOOK_ALLOW_PRIVATE = False
    made = create(url="http://127.0.0.1:9/hook")

    attempt = consumer_send_test(consumer=made.consumer)

    assert (attempt.status_code, attempt.error) == (
        None,
        "127.0.0.1 resolves to 127.0.0.1, a loopback address; webhooks are only "
        "sent to public addresses.",
    )


def test_the_registry_is_sent_no_test_event():
    consumer = registry()
    rejected(
        lambda: consumer_send_test(consumer=consumer),
        "The built-in registry is not sent test events.",
    )


# --- move (the demo partner follows `make run`'s port) ----------------------------


def test_move_rejects_a_bad_url_and_the_registry_and_changes_nothing(settings):
    settings.REFRAIN_WEBHOOK_ALLOW_PRIVATE = False
    partner = create().consumer

    rejected(
        lambda: consumer_move(consumer=partner, url="ftp://partner.example/x"),
        "The URL must start with https:// (or http://).",
    )
    rejected(
        lambda: consumer_move(consumer=registry(), url="https://x.example/"),
        "The built-in registry has no URL.",
    )
    assert consumer_move(consumer=partner, url=partner.url) is False
