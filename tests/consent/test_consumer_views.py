"""The staff consumer pages (``consent.views.consumers``): figures, the
policy admins' forms, the auditors' read-only view, and every rejection
changing nothing."""

from datetime import date, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from consent.models import Consumer, DeliveryAttempt, SyncState
from consent.propagation import consumer_create
from consent.propagation.health import duration_words, percentile
from tests.consent.pages import messages_of, table_rows
from tests.consent.webhook_server import Receiver
from tests.dbstate import database_state
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = "/audit/consumers/"
PUBLIC_URL = "https://93.184.215.14/refrain"  # an address literal: no DNS asked
ONE_USE = ["ai-training"]


def webhook(name="Acme Audio", url=PUBLIC_URL, uses=("genai-training",), **fields):
    return Consumer.objects.create(
        name=name,
        kind=Consumer.Kind.WEBHOOK,
        url=url,
        uses=list(uses),
        secret="whsec_" + "A" * 43 + "=",
        **fields,
    )


def registry():
    """The built-in consumer (migration 0018 made it, unless a transactional
    test flushed it since)."""
    consumer, _ = Consumer.objects.get_or_create(
        kind=Consumer.Kind.REGISTRY,
        defaults={
            "name": "Training-data registry",
            "uses": ["genai-training", "ai-training", "ai-inference", "data-mining"],
        },
    )
    return consumer


def detail(consumer) -> str:
    return f"{LIST}{consumer.pk}/"


@pytest.fixture
def admin_client(client, policy_admin):
    client.force_login(policy_admin)
    return client


@pytest.fixture
def auditor_client(client, auditor):
    client.force_login(auditor)
    return client


def _ago(**delta) -> datetime:
    return timezone.now() - timedelta(**delta)


# --- the list -------------------------------------------------------------------


def test_the_list_shows_each_consumer_with_its_figures(admin_client, make_track):
    # given the registry, a partner with a backlog, a dead letter and
    # failures, and a paused partner with nothing
    built_in = registry()
    acme = webhook(
        uses=["genai-training", "data-mining"], last_success_at=_ago(hours=2)
    )
    webhook(
        name="Beta Labs", status=Consumer.Status.PAUSED, status_reason="Paused by x."
    )
    tracks = [make_track() for _ in range(4)]
    SyncState.objects.create(
        consumer=acme,
        track=tracks[0],
        desired_version=1,
        next_attempt_at=_ago(seconds=1),
        pending_since=_ago(minutes=30),
    )
    SyncState.objects.create(
        consumer=acme,
        track=tracks[1],
        desired_version=1,
        next_attempt_at=_ago(seconds=1),
        pending_since=_ago(minutes=10),
    )
    SyncState.objects.create(
        consumer=acme,
        track=tracks[2],
        desired_version=1,
        dead_at=_ago(minutes=5),
        pending_since=_ago(minutes=20),
    )
    SyncState.objects.create(
        consumer=acme, track=tracks[3], desired_version=1, delivered_version=1
    )
    SyncState.objects.create(
        consumer=built_in, track=tracks[0], desired_version=1, delivered_version=1
    )
    for outcome, started in (
        ("failed", _ago(minutes=5)),
        ("gone", _ago(minutes=50)),
        ("failed", _ago(minutes=70)),  # over an hour ago: not counted
        ("delivered", _ago(minutes=1)),
        ("test", _ago(minutes=1)),
    ):
        DeliveryAttempt.objects.create(
            consumer=acme, outcome=outcome, started_at=started
        )

    # when a policy admin opens the list
    response = admin_client.get(LIST)

    # then the registry comes first, then the partners by name
    assert response.status_code == 200
    rows = table_rows(response.text, "consumer-table")
    assert [row[:4] for row in rows] == [
        ["Training-data registry Built in: the platform's own AI pipelines", "Active",
         "Generative AI training, Other AI training, Input to AI features, "
         "Data mining", "0"],
        ["Acme Audio Partner webhook", "Active",
         "Generative AI training, Data mining", "2"],
        ["Beta Labs Partner webhook", "Paused Paused by x.",
         "Generative AI training", "0"],
    ]  # fmt: skip
    oldest = SyncState.objects.get(track=tracks[0], consumer=acme).pending_since
    assert rows[1][4] == f"{oldest:%Y-%m-%d %H:%M} 30 minutes ago"
    assert [row[5:7] for row in rows] == [["0", "0"], ["2", "1"], ["0", "0"]]
    assert rows[1][7] == f"{acme.last_success_at:%Y-%m-%d %H:%M} 2 hours ago"
    assert [rows[0][4], rows[0][7], rows[2][7]] == ["None", "Never", "Never"]
    assert f'href="/audit/consumers/{acme.pk}/">Acme Audio</a>' in response.text
    assert 'href="/audit/consumers/new/"' in response.text


def test_the_list_costs_the_same_queries_for_any_number_of_consumers(admin_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(LIST).status_code == 200
        return len(captured)

    webhook(name="Partner")
    admin_client.get(LIST)  # warm what is cached per process
    one = queries()
    for number in range(12):
        webhook(name=f"Partner {number}")
    # the session, the user, the group check, the consumers, two grouped
    # counts of sync rows, one of failures (and savepoints around them)
    assert queries() == one
    assert one <= 8


def test_the_audit_page_links_to_the_consumers(client, auditor, policy_admin):
    for user in (auditor, policy_admin):
        client.force_login(user)
        assert '<a href="/audit/consumers/">Consumers</a>' in client.get("/audit/").text
    client.force_login(StaffFactory())
    assert "/audit/consumers/" not in client.get("/audit/").text


# --- who may see and change ---------------------------------------------------


def test_auditors_see_the_pages_without_any_form(auditor_client):
    consumer = webhook()

    listed = auditor_client.get(LIST)
    page = auditor_client.get(detail(consumer))

    assert listed.status_code == page.status_code == 200
    assert "/audit/consumers/new/" not in listed.text
    assert '<form method="post" action="/audit/consumers/' not in page.text
    assert "Rotate the secret" not in page.text


@pytest.mark.parametrize("action", ["pause", "resume", "rotate", "test", "replay"])
def test_auditors_change_nothing(auditor_client, action):
    consumer = webhook(status=Consumer.Status.PAUSED)
    before = database_state()

    response = auditor_client.post(f"{detail(consumer)}{action}/", {"since": ""})

    assert response.status_code == 403
    assert database_state() == before


def test_auditors_cannot_add_a_consumer(auditor_client):
    before = database_state()
    assert auditor_client.get(f"{LIST}new/").status_code == 403
    response = auditor_client.post(
        f"{LIST}new/", {"name": "X", "url": PUBLIC_URL, "uses": ONE_USE}
    )
    assert response.status_code == 403
    assert database_state() == before


def test_other_staff_and_artists_are_kept_out(client):
    consumer = webhook()
    client.force_login(UserFactory())
    refused = client.get(LIST)
    assert refused.status_code == 403
    assert "for the platform&#x27;s staff" in refused.content.decode()
    staff = StaffFactory()
    client.force_login(staff)
    # staff without a second factor are sent to set one up first
    assert client.get(LIST)["Location"] == "/accounts/2fa/"
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    TOTP.activate(staff, generate_totp_secret())
    assert client.get(LIST).status_code == 403
    assert client.get(detail(consumer)).status_code == 403


def test_actions_need_a_post_and_a_csrf_token(policy_admin, client_ip):
    consumer = webhook()
    strict = Client(enforce_csrf_checks=True, REMOTE_ADDR=client_ip)
    strict.force_login(policy_admin)
    before = database_state()

    assert strict.get(f"{detail(consumer)}pause/").status_code == 405
    assert strict.post(f"{detail(consumer)}pause/").status_code == 403

    assert database_state() == before


def test_an_unknown_consumer_is_a_404(admin_client):
    assert admin_client.get(f"{LIST}999999/").status_code == 404
    assert admin_client.post(f"{LIST}999999/pause/").status_code == 404


# --- the detail page --------------------------------------------------------------


def test_the_detail_page_shows_lag_attempts_and_dead_letters(admin_client, make_track):
    consumer = webhook()
    other = webhook(name="Other")
    # lags over the last hour: 100, 200, ... 1000 ms (p50 500, p95 1000); an
    # older delivery, a failure and another consumer's are not counted
    for step in range(1, 11):
        DeliveryAttempt.objects.create(
            consumer=consumer,
            outcome="delivered",
            started_at=_ago(minutes=step),
            lag_ms=step * 100,
            status_code=204,
            tracks=step,
            duration_ms=7,
        )
    DeliveryAttempt.objects.create(
        consumer=consumer,
        outcome="delivered",
        started_at=_ago(minutes=61),
        lag_ms=99999,
    )
    DeliveryAttempt.objects.create(
        consumer=consumer,
        outcome="failed",
        started_at=_ago(seconds=5),
        status_code=503,
        error="HTTP 503",
        tracks=3,
        duration_ms=12,
    )
    DeliveryAttempt.objects.create(
        consumer=other, outcome="delivered", started_at=_ago(minutes=1), lag_ms=5
    )
    dead = make_track(title="Harbour <Lights>")
    SyncState.objects.create(
        consumer=consumer,
        track=dead,
        desired_version=2,
        attempts=10,
        dead_at=_ago(minutes=3),
        last_error="ConnectTimeoutError: timed out",
    )

    response = admin_client.get(detail(consumer))

    assert response.status_code == 200
    assert (
        '<dd>Median 500 ms, 95th percentile 1.0 s <span class="help">over 10 '
        "delivered requests</span></dd>" in response.text
    )
    assert "Lag is how long a change waited: from the moment it was saved" in (
        response.text
    )
    attempts = table_rows(response.text, "attempt-table")
    assert len(attempts) == 12
    assert attempts[0][1:] == ["Failed", "503", "12 ms", "3", "HTTP 503"]
    assert attempts[1][1:] == ["Delivered", "204", "7 ms", "1", "—"]
    assert table_rows(response.text, "dead-table") == [
        [f"Harbour <Lights> {dead.public_id}",
         f"{SyncState.objects.get(track=dead).dead_at:%Y-%m-%d %H:%M:%S}", "10",
         "ConnectTimeoutError: timed out"]
    ]  # fmt: skip
    assert "Harbour &lt;Lights&gt;" in response.text


def test_the_detail_page_shows_the_last_50_attempts(admin_client):
    consumer = webhook()
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            consumer=consumer, outcome="delivered", started_at=_ago(seconds=n), tracks=n
        )
        for n in range(55)
    )

    attempts = table_rows(admin_client.get(detail(consumer)).text, "attempt-table")

    assert [row[4] for row in attempts] == [str(n) for n in range(50)]


def test_percentiles_are_nearest_rank():
    assert percentile([], 0.5) is None
    assert percentile([7], 0.95) == 7
    assert percentile([1, 2, 3, 4], 0.5) == 2
    assert percentile(list(range(1, 21)), 0.95) == 19
    assert percentile(list(range(1, 101)), 0.95) == 95


def test_the_registry_has_no_secret_or_test_event(admin_client):
    consumer = registry()
    page = admin_client.get(detail(consumer)).text
    assert "Rotate the secret" not in page
    assert "Send a test event" not in page
    assert "Replay" in page


# --- creating -----------------------------------------------------------------------


def test_creating_a_webhook_shows_its_secret_once(admin_client, policy_admin):
    response = admin_client.post(
        f"{LIST}new/",
        {
            "name": " Acme Audio ",
            "url": PUBLIC_URL,
            "uses": ["data-mining", "genai-training"],
        },
    )

    assert response.status_code == 200
    consumer = Consumer.objects.get(kind="webhook")
    assert (consumer.name, consumer.kind, consumer.url, consumer.uses) == (
        "Acme Audio",
        "webhook",
        PUBLIC_URL,
        ["genai-training", "data-mining"],
    )
    assert consumer.created_by == policy_admin
    assert consumer.secret.startswith("whsec_")
    assert f'value="{consumer.secret}" readonly' in response.text
    assert "it is shown only this once" in response.text
    # and never again
    assert consumer.secret not in admin_client.get(detail(consumer)).text
    assert consumer.secret not in admin_client.get(LIST).text


def test_the_create_form_has_labelled_fields_and_use_checkboxes(admin_client):
    page = admin_client.get(f"{LIST}new/").text
    assert '<label for="id_name">Name</label>' in page
    assert '<label for="id_url">Webhook URL</label>' in page
    assert "<legend>Uses it receives</legend>" in page
    for index, name in enumerate(
        ["Generative AI training", "Other AI training", "Input to AI features",
         "Data mining"]
    ):  # fmt: skip
        assert f'<label for="id_uses_{index}">{name}</label>' in page


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "", "url": PUBLIC_URL, "uses": ONE_USE}, "Give the consumer a name."),
        (
            {"name": "X", "url": "", "uses": ONE_USE},
            "Give the URL Refrain should send to.",
        ),
        ({"name": "X", "url": PUBLIC_URL}, "Choose at least one use."),
        (
            {"name": "X", "url": PUBLIC_URL, "uses": ["cooking"]},
            "Choose from the uses listed.",
        ),
        (
            {"name": "X", "url": "ftp://93.184.215.14/", "uses": ONE_USE},
            "The URL must start with https:// (or http://).",
        ),
        (
            {"name": "X", "url": "https://user:pw@93.184.215.14/", "uses": ONE_USE},
            "The URL must not carry a user name or password.",
        ),
        (
            {"name": "Taken", "url": PUBLIC_URL, "uses": ONE_USE},
            "A consumer named “Taken” exists already.",
        ),
        (
            {"name": "X", "url": "http://127.0.0.1:8000/hook", "uses": ONE_USE},
            "127.0.0.1 resolves to 127.0.0.1, a loopback address; webhooks are only "
            "sent to public addresses.",
        ),
        (
            {"name": "X", "url": "http://localhost/hook", "uses": ONE_USE},
            "localhost resolves to",
        ),
        (
            {"name": "X", "url": "https://10.1.2.3/hook", "uses": ONE_USE},
            "10.1.2.3 resolves to 10.1.2.3, a private address; webhooks are only "
            "sent to public addresses.",
        ),
        (
            {"name": "X", "url": "https://[fd00::1]/hook", "uses": ONE_USE},
            "fd00::1 resolves to fd00::1, a private address",
        ),
        (
            {"name": "X", "url": "https://no-such-host.invalid/", "uses": ONE_USE},
            "The host name 'no-such-host.invalid' does not resolve",
        ),
    ],
)
def test_a_rejected_consumer_is_explained_and_not_created(admin_client, form, message):
    webhook(name="taken")
    before = database_state()

    response = admin_client.post(f"{LIST}new/", form)

    assert response.status_code == 200
    assert message in response.text.replace("&#x27;", "'")
    assert 'role="alert"' in response.text
    assert database_state() == before


def test_a_private_address_is_accepted_when_allowed(admin_client, settings):
    settings.REFRAIN_WEBHOOK_ALLOW_PRIVATE = True
    response = admin_client.post(
        f"{LIST}new/",
        {"name": "Local", "url": "http://127.0.0.1:8000/hook", "uses": ONE_USE},
    )
    assert response.status_code == 200
    assert Consumer.objects.get(kind="webhook").url == "http://127.0.0.1:8000/hook"


# --- pause, resume ------------------------------------------------------------------


def test_pausing_and_resuming(admin_client, policy_admin):
    consumer = webhook(consecutive_failures=4, hold_until=_ago(seconds=-60))

    paused = admin_client.post(f"{detail(consumer)}pause/", follow=True)

    consumer.refresh_from_db()
    assert (consumer.status, consumer.status_reason) == (
        "paused",
        f"Paused by {policy_admin.email}.",
    )
    assert messages_of(paused) == [
        "Acme Audio is paused. Changes are still recorded and will be sent when "
        "it is resumed."
    ]
    assert paused.redirect_chain == [(detail(consumer), 302)]
    assert f'action="{detail(consumer)}resume/"' in paused.text

    resumed = admin_client.post(f"{detail(consumer)}resume/", follow=True)

    consumer.refresh_from_db()
    assert (
        consumer.status,
        consumer.status_reason,
        consumer.consecutive_failures,
        consumer.hold_until,
    ) == ("active", "", 0, None)
    assert messages_of(resumed) == [
        "Acme Audio is active again: what it missed is on its way."
    ]


@pytest.mark.parametrize(
    ("status", "action", "message"),
    [
        (
            "paused",
            "pause",
            "Acme Audio is paused already: only an active consumer can be paused.",
        ),
        (
            "disabled",
            "pause",
            "Acme Audio is disabled already: only an active consumer can be paused.",
        ),
        ("active", "resume", "Acme Audio is active already."),
    ],
)
def test_a_pause_or_resume_that_does_not_apply_changes_nothing(
    admin_client, status, action, message
):
    consumer = webhook(status=status)
    before = database_state()

    response = admin_client.post(f"{detail(consumer)}{action}/", follow=True)

    assert messages_of(response) == [message]
    assert database_state() == before


def test_the_registry_cannot_be_paused(admin_client):
    consumer = registry()
    before = database_state()

    response = admin_client.post(f"{detail(consumer)}pause/", follow=True)

    assert messages_of(response) == [
        "The built-in registry cannot be paused: the platform's own AI pipelines "
        "must hear of every change."
    ]
    assert database_state() == before


# --- rotating the secret ----------------------------------------------------------


def test_rotating_shows_the_new_secret_once_and_keeps_the_old_one(
    admin_client, settings
):
    settings.REFRAIN_WEBHOOK_SECRET_GRACE_HOURS = 6
    consumer = webhook()
    old = consumer.secret

    response = admin_client.post(f"{detail(consumer)}rotate/")

    consumer.refresh_from_db()
    assert response.status_code == 200
    assert consumer.secret != old and consumer.secret.startswith("whsec_")
    assert consumer.previous_secret == old
    expected = timezone.now() + timedelta(hours=6)
    assert abs(consumer.previous_secret_expires_at - expected) < timedelta(seconds=5)
    assert f'value="{consumer.secret}" readonly' in response.text
    assert old not in response.text
    assert "The old secret keeps working for 6 hours" in response.text
    assert consumer.secret not in admin_client.get(detail(consumer)).text


def test_the_registry_has_no_secret_to_rotate(admin_client):
    consumer = registry()
    before = database_state()

    response = admin_client.post(f"{detail(consumer)}rotate/", follow=True)

    assert messages_of(response) == ["The built-in registry has no secret."]
    assert database_state() == before


# --- the test event ---------------------------------------------------------------


def test_a_test_event_reaches_a_verifying_receiver(admin_client, settings):
    settings.REFRAIN_WEBHOOK_ALLOW_PRIVATE = True
    with Receiver() as receiver:
        consumer = webhook(url=receiver.url)
        receiver.secret = consumer.secret

        response = admin_client.post(f"{detail(consumer)}test/", follow=True)

    attempt = DeliveryAttempt.objects.get()
    assert receiver.answers == [(200, "Test event received.")]
    assert (attempt.outcome, attempt.status_code, attempt.error) == ("test", 200, "")
    assert messages_of(response) == [
        f"The test event was delivered: HTTP 200 in {attempt.duration_ms} ms."
    ]
    assert table_rows(response.text, "attempt-table")[0][1:3] == ["Test event", "200"]


def test_a_failed_test_event_says_why(admin_client, settings):
    settings.REFRAIN_WEBHOOK_ALLOW_PRIVATE = True
    with Receiver(status=500) as receiver:
        consumer = webhook(url=receiver.url)
        response = admin_client.post(f"{detail(consumer)}test/", follow=True)

    attempt = DeliveryAttempt.objects.get()
    assert messages_of(response) == [
        f"The test event was not delivered (HTTP 500), in {attempt.duration_ms} ms."
    ]


def test_a_test_event_to_a_private_address_is_refused_when_sent(admin_client):
    consumer = webhook(url="http://127.0.0.1:9/hook")

    response = admin_client.post(f"{detail(consumer)}test/", follow=True)

    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code is None
    assert messages_of(response) == [
        "The test event was not delivered (127.0.0.1 resolves to 127.0.0.1, a "
        "loopback address; webhooks are only sent to public addresses.), in "
        f"{attempt.duration_ms} ms."
    ]


def test_the_registry_gets_no_test_event(admin_client):
    consumer = registry()
    before = database_state()
    response = admin_client.post(f"{detail(consumer)}test/", follow=True)
    assert messages_of(response) == ["The built-in registry is not sent test events."]
    assert database_state() == before


# --- replay -------------------------------------------------------------------------


def test_replaying_every_track(admin_client):
    consumer = webhook()

    response = admin_client.post(
        f"{detail(consumer)}replay/", {"since": ""}, follow=True
    )

    consumer.refresh_from_db()
    assert (consumer.backfill_after, consumer.backfill_since) == (0, None)
    assert messages_of(response) == [
        "Replay started: Acme Audio will be sent the current state of every track."
    ]
    assert "<dd>In progress: the current state of every track</dd>" in response.text
    # and nothing claims that everything is delivered while it is queued
    assert "None yet: the catalogue is still being queued" in response.text
    assert "everything is delivered" not in response.text


def test_replaying_from_a_date(admin_client):
    consumer = webhook()

    response = admin_client.post(
        f"{detail(consumer)}replay/", {"since": "2025-03-04"}, follow=True
    )

    consumer.refresh_from_db()
    assert consumer.backfill_after == 0
    assert consumer.backfill_since == timezone.make_aware(datetime(2025, 3, 4))
    assert messages_of(response) == [
        "Replay started: Acme Audio will be sent the current state of every track "
        "changed or uploaded since 2025-03-04."
    ]


@pytest.mark.parametrize(
    ("since", "message"),
    [
        ("2025-02-30", "Enter a real date, as YYYY-MM-DD."),
        ("yesterday", "Enter a real date, as YYYY-MM-DD."),
        ("04/03/2025", "Enter a real date, as YYYY-MM-DD."),
        ((date.today() + timedelta(days=2)).isoformat(), "The date is in the future."),
    ],
)
def test_a_bad_replay_date_is_explained_and_changes_nothing(
    admin_client, since, message
):
    consumer = webhook()
    before = database_state()

    response = admin_client.post(f"{detail(consumer)}replay/", {"since": since})

    assert response.status_code == 400
    assert (
        f'<ul class="errorlist" id="id_since_error"><li>{message}</li></ul>'
        in response.text
    )
    assert 'aria-invalid="true"' in response.text
    assert f'value="{since}"' in response.text
    assert database_state() == before


def test_the_create_service_refuses_what_the_page_refuses():
    # the command line goes through the same check as the page
    with pytest.raises(Exception, match="a loopback address"):
        consumer_create(
            check_address=True,
            name="X",
            url="http://127.0.0.1/",
            uses="ai-training",
            actor=None,
        )
    assert not Consumer.objects.filter(kind="webhook").exists()


def test_durations_are_in_words():
    assert [duration_words(ms) for ms in (None, 0, 999, 1000, 1250, 9949, 30071)] == [
        "", "0 ms", "999 ms", "1.0 s", "1.2 s", "9.9 s", "30 s"
    ]  # fmt: skip
