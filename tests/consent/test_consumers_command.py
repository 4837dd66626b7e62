"""``manage.py consumers list|add|pause|resume|replay|rotate``."""

from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from consent.models import Consumer, SyncState
from tests.dbstate import database_state

pytestmark = pytest.mark.django_db

PUBLIC_URL = "https://93.184.215.14/refrain"


def run(*args) -> str:
    out = StringIO()
    call_command("consumers", *args, stdout=out)
    return out.getvalue()


def webhook(name="Acme Audio", **fields):
    return Consumer.objects.create(
        name=name,
        kind=Consumer.Kind.WEBHOOK,
        url=PUBLIC_URL,
        uses=["genai-training"],
        secret="whsec_" + "A" * 43 + "=",
        **fields,
    )


def refused(*args, message: str) -> None:
    """The command exits with ``message`` and changes nothing."""
    before = database_state()
    with pytest.raises(CommandError) as error:
        run(*args)
    assert str(error.value) == message
    assert database_state() == before


def test_add_prints_the_secret_once():
    output = run(
        "add", "--name", "Acme Audio", "--url", PUBLIC_URL,
        "--uses", "data-mining, genai-training",
    )  # fmt: skip

    consumer = Consumer.objects.get(kind="webhook")
    assert (consumer.name, consumer.url, consumer.uses, consumer.status) == (
        "Acme Audio", PUBLIC_URL, ["genai-training", "data-mining"], "active"
    )  # fmt: skip
    assert output.splitlines() == [
        f"Added Acme Audio (id {consumer.pk}).",
        f"Secret (shown only this once): {consumer.secret}",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "X", "--url", PUBLIC_URL, "--uses", "cooking"],
         "Unknown use cooking: choose from genai-training, ai-training, "
         "ai-inference, data-mining."),
        (["--name", "X", "--url", PUBLIC_URL, "--uses", " , "],
         "Choose at least one use."),
        (["--name", "X", "--url", "ftp://93.184.215.14/", "--uses", "ai-training"],
         "The URL must start with https:// (or http://)."),
        (["--name", "", "--url", PUBLIC_URL, "--uses", "ai-training"],
         "Give the consumer a name of 1 to 100 characters."),
        (["--name", "ACME AUDIO", "--url", PUBLIC_URL, "--uses", "ai-training"],
         "A consumer named “ACME AUDIO” exists already."),
        (["--name", "X", "--url", "http://localhost:8000/", "--uses", "ai-training"],
         "localhost resolves to 127.0.0.1, a loopback address; webhooks are only "
         "sent to public addresses."),
    ],
)  # fmt: skip
def test_add_refuses_with_the_services_message(args, message):
    webhook()
    refused("add", *args, message=message)


def test_add_needs_its_options():
    refused("add", "--name", "X", message="Error: the following arguments are "
            "required: --url, --uses")  # fmt: skip


def test_list_prints_status_backlog_and_dead_letters(make_track):
    Consumer.objects.filter(kind="registry").delete()
    acme = webhook(last_success_at=timezone.make_aware(datetime(2026, 1, 2, 3, 4, 5)))
    webhook(name="Beta Labs", status="paused")
    now = timezone.now()
    for track in (make_track(), make_track()):
        SyncState.objects.create(
            consumer=acme, track=track, desired_version=1, next_attempt_at=now
        )
    SyncState.objects.create(
        consumer=acme, track=make_track(), desired_version=1, dead_at=now
    )

    assert run("list").splitlines() == [
        "Name        Kind     Status  Backlog  Dead letters  Last success",
        "Acme Audio  webhook  active  2        1             2026-01-02 03:04:05",
        "Beta Labs   webhook  paused  0        0             never",
    ]


def test_pause_and_resume():
    consumer = webhook(consecutive_failures=3)

    assert run("pause", "acme audio") == "Acme Audio is paused.\n"
    consumer.refresh_from_db()
    assert (consumer.status, consumer.status_reason) == (
        "paused", "Paused by a command."
    )  # fmt: skip

    assert run("resume", "Acme Audio") == "Acme Audio is active.\n"
    consumer.refresh_from_db()
    assert (consumer.status, consumer.consecutive_failures) == ("active", 0)


def test_pause_and_resume_refusals():
    Consumer.objects.filter(kind="registry").delete()
    webhook()
    webhook(name="Beta Labs", status="paused")
    refused("pause", "Beta Labs", message="Beta Labs is paused already: only an "
            "active consumer can be paused.")  # fmt: skip
    refused("resume", "Acme Audio", message="Acme Audio is active already.")
    refused("pause", "Nobody", message="No consumer named 'Nobody' (known: Acme "
            "Audio, Beta Labs).")  # fmt: skip


def test_rotate_prints_the_new_secret(settings):
    settings.REFRAIN_WEBHOOK_SECRET_GRACE_HOURS = 24
    consumer = webhook()
    old = consumer.secret

    output = run("rotate", "Acme Audio")

    consumer.refresh_from_db()
    assert consumer.previous_secret == old
    assert output.splitlines() == [
        f"New secret (shown only this once): {consumer.secret}",
        "The old secret keeps working for 24 hours.",
    ]


def test_rotate_refuses_the_registry():
    Consumer.objects.get_or_create(
        kind="registry", defaults={"name": "Training-data registry", "uses": []}
    )
    name = Consumer.objects.get(kind="registry").name
    refused("rotate", name, message="The built-in registry has no secret.")


def test_replay_every_track_or_since_a_date():
    consumer = webhook()

    assert run("replay", "Acme Audio") == (
        "Replay of every track to Acme Audio started.\n"
    )
    consumer.refresh_from_db()
    assert (consumer.backfill_after, consumer.backfill_since) == (0, None)

    assert run("replay", "Acme Audio", "--since", "2025-03-04") == (
        "Replay of tracks changed since 2025-03-04 to Acme Audio started.\n"
    )
    consumer.refresh_from_db()
    assert consumer.backfill_since == timezone.make_aware(datetime(2025, 3, 4))


@pytest.mark.parametrize(
    ("since", "message"),
    [
        ("2025-02-30", "--since '2025-02-30' is not a real date: give it as "
         "YYYY-MM-DD."),
        ("soon", "--since 'soon' is not a real date: give it as YYYY-MM-DD."),
        ((timezone.localdate() + timedelta(days=2)).isoformat(),
         "The replay date is in the future."),
    ],
)  # fmt: skip
def test_replay_refuses_a_bad_date(since, message):
    webhook()
    refused("replay", "Acme Audio", "--since", since, message=message)


def test_an_unknown_action_is_refused():
    with pytest.raises(CommandError, match="invalid choice: 'delete'"):
        run("delete", "Acme Audio")
