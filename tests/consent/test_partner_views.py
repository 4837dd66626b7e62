"""The staff pages of the AI partners and the API keys
(``consent.views.partners``): the list and each partner's page, the policy
admins' forms (a key's plaintext shown once), the auditors' read-only view,
and every rejection changing nothing."""

import hashlib
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from consent.models import ApiKey, Consumer, Partner
from consent.partners import apikey_authenticate, apikey_create, partner_create
from tests.consent.helpers import GENAI, MINING
from tests.consent.pages import messages_of, table_rows
from tests.consent.withdrawals import withdraw
from tests.dbstate import database_state
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = "/audit/partners/"
NEW = f"{LIST}new/"
CATALOG_KEY_NEW = f"{LIST}catalog-keys/new/"


def detail(partner) -> str:
    return f"{LIST}{partner.pk}/"


def key_new(partner) -> str:
    return f"{detail(partner)}keys/new/"


def revoke(key) -> str:
    return f"{LIST}keys/{key.pk}/revoke/"


def webhook(name="Acme Audio") -> Consumer:
    return Consumer.objects.create(
        name=name,
        kind=Consumer.Kind.WEBHOOK,
        url="https://93.184.215.14/refrain",
        uses=[GENAI],
        secret="whsec_" + "A" * 43 + "=",
    )


def _ago(**delta) -> datetime:
    return timezone.now() - timedelta(**delta)


@pytest.fixture
def admin_client(client, policy_admin):
    client.force_login(policy_admin)
    return client


@pytest.fixture
def auditor_client(client, auditor):
    client.force_login(auditor)
    return client


@pytest.fixture
def acme():
    """A partner with one day to acknowledge, added ten days ago."""
    partner = partner_create(name="Acme AI", ack_days=1)
    Partner.objects.filter(pk=partner.pk).update(created_at=_ago(days=10))
    partner.refresh_from_db()
    return partner


def partner_key(partner, name="Production checker") -> tuple[ApiKey, str]:
    return apikey_create(name=name, scope=ApiKey.Scope.PARTNER, partner=partner)


# --- the list ---------------------------------------------------------------------


def test_the_list_shows_each_partner_with_its_figures(admin_client, acme, make_track):
    # given Acme (a webhook, two live keys and a revoked one, two overdue
    # acknowledgements, one owed but not yet due) and Beta (nothing)
    hook = webhook()
    Partner.objects.filter(pk=acme.pk).update(consumer=hook)
    for name in ("One", "Two", "Old"):
        partner_key(acme, name)
    ApiKey.objects.filter(name="Old").update(revoked_at=_ago(days=1))
    for track in (make_track(), make_track()):
        withdraw(track, at=_ago(days=3))
    withdraw(make_track(), at=_ago(hours=1))
    beta = partner_create(name="Beta Labs", ack_days=60)

    # when a policy admin opens the list
    response = admin_client.get(LIST)

    # then each partner's row says it, by name
    assert response.status_code == 200
    assert table_rows(response.text, "partner-table") == [
        ["Acme AI", "Acme Audio", "1 day", "2", "! 2 overdue"],
        ["Beta Labs", "None", "60 days", "0", "0"],
    ]
    assert f'<a href="/audit/partners/{acme.pk}/">Acme AI</a>' in response.text
    assert f'<a href="/audit/partners/{beta.pk}/">Beta Labs</a>' in response.text
    assert f'<a href="/audit/consumers/{hook.pk}/">Acme Audio</a>' in response.text
    assert '<a class="button" href="/audit/partners/new/">Add a partner</a>' in (
        response.text
    )


def test_the_audit_page_links_to_the_partners(client, auditor, policy_admin):
    for user in (auditor, policy_admin):
        client.force_login(user)
        assert (
            '<a href="/audit/partners/">AI partners</a>' in client.get("/audit/").text
        )
    client.force_login(StaffFactory())
    assert "/audit/partners/" not in client.get("/audit/").text


# --- who may see and change -----------------------------------------------------


def test_auditors_read_the_pages_without_any_form(auditor_client, acme):
    key, _ = partner_key(acme)
    catalog, _ = apikey_create(name="Feed", scope=ApiKey.Scope.CATALOG)

    listed = auditor_client.get(LIST)
    page = auditor_client.get(detail(acme))

    assert listed.status_code == page.status_code == 200
    assert table_rows(listed.text, "partner-table")[0][0] == "Acme AI"
    assert [row[0] for row in table_rows(listed.text, "key-table")] == ["Feed"]
    assert [row[0] for row in table_rows(page.text, "key-table")] == [
        "Production checker"
    ]
    for text in (listed.text, page.text):
        assert '<form method="post"' not in text.split("<main", 1)[1]
        assert "Revoke" not in text
        assert "New key" not in text
    assert "/audit/partners/new/" not in listed.text


@pytest.mark.parametrize(
    ("url", "form"),
    [
        (NEW, {"name": "Beta Labs", "ack_days": "30"}),
        ("key_new", {"name": "Another"}),
        (CATALOG_KEY_NEW, {"name": "Feed"}),
        ("revoke", {}),
    ],
)
def test_auditors_create_and_revoke_nothing(auditor_client, acme, url, form):
    key, plaintext = partner_key(acme)
    url = {"key_new": key_new(acme), "revoke": revoke(key)}.get(url, url)
    before = database_state()

    response = auditor_client.post(url, form)

    assert response.status_code == 403
    assert database_state() == before
    assert apikey_authenticate(plaintext=plaintext)[0] == key


def test_auditors_cannot_open_the_new_partner_form(auditor_client):
    assert auditor_client.get(NEW).status_code == 403


def test_artists_and_other_staff_are_kept_out(client, acme):
    # an artist gets the page that says these pages are for staff
    client.force_login(UserFactory())
    for url in (LIST, detail(acme), NEW):
        assert client.get(url).status_code == 403
    before = database_state()
    assert client.post(NEW, {"name": "X", "ack_days": "30"}).status_code == 403
    assert database_state() == before
    # staff without a second factor are sent to set one up first
    staff = StaffFactory()
    client.force_login(staff)
    assert client.get(LIST)["Location"] == "/accounts/2fa/"
    # staff in neither group are refused
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    TOTP.activate(staff, generate_totp_secret())
    assert client.get(LIST).status_code == 403
    assert client.get(detail(acme)).status_code == 403


def test_changes_need_a_post_and_a_csrf_token(policy_admin, client_ip, acme):
    key, _ = partner_key(acme)
    strict = Client(enforce_csrf_checks=True, REMOTE_ADDR=client_ip)
    strict.force_login(policy_admin)
    before = database_state()

    assert strict.get(revoke(key)).status_code == 405
    assert strict.get(key_new(acme)).status_code == 405
    assert strict.post(revoke(key)).status_code == 403
    assert strict.post(NEW, {"name": "X", "ack_days": "30"}).status_code == 403

    assert database_state() == before


def test_an_unknown_partner_or_key_is_a_404(admin_client):
    assert admin_client.get(f"{LIST}999999/").status_code == 404
    assert admin_client.post(f"{LIST}999999/keys/new/", {"name": "X"}).status_code == (
        404
    )
    assert admin_client.post(f"{LIST}keys/999999/revoke/").status_code == 404


# --- adding a partner --------------------------------------------------------------


def test_the_new_partner_form_has_labelled_fields_and_free_webhooks_only(
    admin_client, acme
):
    taken = webhook("Taken Hook")
    Partner.objects.filter(pk=acme.pk).update(consumer=taken)
    free = webhook("Free Hook")
    Consumer.objects.get_or_create(
        kind=Consumer.Kind.REGISTRY,
        defaults={"name": "Training-data registry", "uses": [GENAI]},
    )

    page = admin_client.get(NEW).text

    assert '<label for="id_name">Name</label>' in page
    assert '<label for="id_consumer">Webhook</label>' in page
    assert '<label for="id_ack_days">Acknowledgement deadline, in days</label>' in page
    assert 'name="ack_days" value="30"' in page
    assert f'<option value="{free.pk}">Free Hook</option>' in page
    assert "Taken Hook" not in page
    assert "Training-data registry" not in page


def test_a_policy_admin_adds_a_partner(admin_client, policy_admin):
    hook = webhook()

    response = admin_client.post(
        NEW, {"name": " Beta Labs ", "consumer": str(hook.pk), "ack_days": "14"}
    )

    partner = Partner.objects.get()
    assert (partner.name, partner.consumer, partner.ack_days, partner.created_by) == (
        "Beta Labs",
        hook,
        14,
        policy_admin,
    )
    assert response.status_code == 302
    assert response["Location"] == detail(partner)
    assert messages_of(admin_client.get(detail(partner))) == [
        "Beta Labs is added. Create a key for it below, to give to the company."
    ]


def test_a_partner_without_a_webhook_gets_the_default_deadline(admin_client):
    admin_client.post(NEW, {"name": "Beta Labs", "consumer": "", "ack_days": "30"})

    partner = Partner.objects.get()
    assert (partner.consumer, partner.ack_days) == (None, 30)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "", "ack_days": "30"}, "Give the partner a name."),
        ({"name": "   ", "ack_days": "30"}, "Give the partner a name."),
        ({"name": "x" * 101, "ack_days": "30"}, "A partner's name is at most 100"),
        ({"name": "acme ai", "ack_days": "30"}, "There is already a partner named"),
        ({"name": "Beta", "ack_days": "0"}, "The deadline is at least 1 day."),
        ({"name": "Beta", "ack_days": "400"}, "The deadline is at most 365 days."),
        ({"name": "Beta", "ack_days": ""}, "Give the deadline: 1 to 365 days."),
        ({"name": "Beta", "ack_days": "two"}, "Give the deadline as a whole number"),
        (
            {"name": "Beta", "ack_days": "30", "consumer": "taken"},
            "Choose one of the webhooks listed: the others belong to a partner "
            "already.",
        ),
        (
            {"name": "Beta", "ack_days": "30", "consumer": "999999"},
            "Choose one of the webhooks listed",
        ),
    ],
)
def test_a_rejected_partner_is_explained_and_not_created(
    admin_client, acme, form, message
):
    # given a partner "Acme AI" whose webhook is taken
    taken = webhook("Taken Hook")
    Partner.objects.filter(pk=acme.pk).update(consumer=taken)
    if form.get("consumer") == "taken":
        form = {**form, "consumer": str(taken.pk)}
    before = database_state()

    # when the form is sent
    response = admin_client.post(NEW, form)

    # then it comes back with the message, and nothing is written
    assert response.status_code == 200
    assert message in response.text.replace("&#x27;", "'")
    assert 'role="alert"' in response.text
    assert database_state() == before


# --- keys -----------------------------------------------------------------------------


def test_a_new_key_is_shown_once_and_only_its_hash_is_kept(
    admin_client, policy_admin, acme
):
    # when a policy admin creates a key for Acme
    response = admin_client.post(
        key_new(acme), {"name": "Production checker", "rate_limit": "120"}
    )

    # then the page shows the key once, with the warning
    assert response.status_code == 200
    key = ApiKey.objects.get()
    page = response.text
    plaintext = page.split('id="api-key" type="text" class="mono" value="', 1)[1]
    plaintext = plaintext.split('"', 1)[0]
    assert plaintext.startswith("rfk_") and len(plaintext) > 40
    assert "Copy it now: it is not shown again." in page
    assert (key.name, key.scope, key.partner, key.rate_limit, key.created_by) == (
        "Production checker",
        "partner",
        acme,
        120,
        policy_admin,
    )
    # only its SHA-256 and its first characters are stored
    assert key.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert key.prefix == plaintext[:12]
    stored = [str(value) for value in ApiKey.objects.values_list().get()]
    assert not any(plaintext in value for value in stored)
    # it works, and is never shown again
    assert apikey_authenticate(plaintext=plaintext)[0] == key
    key.refresh_from_db()
    again = admin_client.get(detail(acme)).text
    assert plaintext not in again
    assert table_rows(again, "key-table") == [
        [
            "Production checker",
            f"{key.prefix}…",
            "120/min",
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.last_used_at:%Y-%m-%d %H:%M} just now",
            "Active",
            "Revoke the key “Production checker”",
        ]
    ]


def test_a_key_without_a_rate_limit_gets_the_default(admin_client, acme, settings):
    settings.REFRAIN_API_KEY_RATE_LIMIT = 600

    admin_client.post(key_new(acme), {"name": "Checker", "rate_limit": ""})

    assert ApiKey.objects.get().rate_limit == 600
    assert "left empty, the key gets the default of 600." in (
        admin_client.get(detail(acme)).text
    )


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": ""}, "Give the key a name."),
        ({"name": "  "}, "Give the key a name."),
        ({"name": "x" * 101}, "A key's name is at most 100 characters."),
        ({"name": "K", "rate_limit": "0"}, "The rate limit is at least 1 request"),
        ({"name": "K", "rate_limit": "100001"}, "The rate limit is at most 100,000"),
        ({"name": "K", "rate_limit": "fast"}, "Give the rate limit as a whole number"),
    ],
)
def test_a_rejected_key_is_explained_and_not_created(admin_client, acme, form, message):
    before = database_state()

    partner_page = admin_client.post(key_new(acme), form)
    catalog_page = admin_client.post(CATALOG_KEY_NEW, form)

    for response in (partner_page, catalog_page):
        assert response.status_code == 400
        assert message in response.text.replace("&#x27;", "'")
        assert 'role="alert"' in response.text
        assert 'aria-invalid="true"' in response.text
        assert "rfk_" not in response.text
    assert database_state() == before


def test_revoking_a_key_refuses_it_from_then_on(admin_client, acme):
    key, plaintext = partner_key(acme)
    other, other_plaintext = partner_key(acme, "Other")

    response = admin_client.post(revoke(key), follow=True)

    key.refresh_from_db()
    assert key.revoked_at is not None
    assert apikey_authenticate(plaintext=plaintext) == (None, "revoked")
    assert apikey_authenticate(plaintext=other_plaintext)[0] == other
    assert response.redirect_chain == [(detail(acme), 302)]
    assert messages_of(response) == [
        f"The key “Production checker” ({key.prefix}…) is revoked: every request "
        "that uses it is refused from now on."
    ]
    rows = {row[0]: row for row in table_rows(response.text, "key-table")}
    assert rows["Production checker"][5] == (
        f"Revoked on {key.revoked_at:%Y-%m-%d %H:%M}"
    )
    assert rows["Production checker"][6] == ""
    assert rows["Other"][4:] == ["Never", "Active", "Revoke the key “Other”"]
    # the list counts the live key only
    assert table_rows(admin_client.get(LIST).text, "partner-table")[0][3] == "1"


def test_revoking_a_revoked_key_changes_nothing(admin_client, acme):
    key, _ = partner_key(acme)
    admin_client.post(revoke(key), follow=True)
    before = database_state()

    response = admin_client.post(revoke(key), follow=True)

    assert messages_of(response) == [
        "The key “Production checker” was revoked already."
    ]
    assert database_state() == before


def test_catalogue_keys_are_created_and_revoked_on_the_list(admin_client, acme):
    # when a policy admin creates a catalogue key
    created = admin_client.post(CATALOG_KEY_NEW, {"name": "Nightly import"})

    # then it is shown once, belongs to no partner, and imports
    key = ApiKey.objects.get()
    assert (key.scope, key.partner) == ("catalog", None)
    assert created.status_code == 200
    assert "Copy it now: it is not shown again." in created.text
    assert '<h2 id="key-heading">Catalogue key</h2>' in created.text
    plaintext = created.text.split('class="mono" value="', 1)[1].split('"', 1)[0]
    assert apikey_authenticate(plaintext=plaintext)[0] == key
    listed = admin_client.get(LIST).text
    assert [row[0] for row in table_rows(listed, "key-table")] == ["Nightly import"]
    assert plaintext not in listed

    # when it is revoked, the list is where the answer goes
    revoked = admin_client.post(revoke(key))

    assert revoked["Location"] == LIST
    assert apikey_authenticate(plaintext=plaintext) == (None, "revoked")


# --- the partner's page ---------------------------------------------------------------


def test_the_partner_page_lists_its_overdue_acknowledgements(
    admin_client, acme, make_track
):
    # given an overdue withdrawal, one acknowledged, one not yet due, and
    # one made before the partner was added
    artist = UserFactory(display_name="Nadia Rahman")
    overdue = make_track(artist=artist, title="Harbour <Lights>")
    withdraw(overdue, MINING, at=_ago(days=3))
    settled = make_track(artist=artist)
    withdraw(settled, at=_ago(days=3))
    settled.refresh_from_db()
    acme.acknowledgements.create(
        track=settled,
        use=GENAI,
        consent_version=settled.consent_version,
        status="removed",
        dataset="Acme v1",
    )
    withdraw(make_track(artist=artist), at=_ago(hours=2))
    withdraw(make_track(artist=artist), at=_ago(days=20))

    response = admin_client.get(detail(acme))

    withdrawn = overdue.ledger.get(consent_version=2).created_at
    due = withdrawn + timedelta(days=1)
    assert response.status_code == 200
    assert table_rows(response.text, "overdue-table") == [
        [
            f"Harbour <Lights> {overdue.public_id}",
            f"Nadia Rahman {artist.email}",
            "Data mining",
            f"{withdrawn:%Y-%m-%d %H:%M}",
            f"{due:%Y-%m-%d %H:%M}",
        ]
    ]
    assert "Harbour &lt;Lights&gt;" in response.text
    assert '<span class="badge badge-overdue">' in response.text
    assert "1 day to acknowledge each withdrawal" in response.text


def test_the_partner_page_says_none_overdue(admin_client, acme):
    response = admin_client.get(detail(acme))

    assert "None overdue." in response.text
    assert "overdue-table" not in response.text
    assert "No keys yet: the partner cannot use the API." in response.text


def test_overdue_acknowledgements_come_50_to_a_page(admin_client, acme, make_track):
    artist = UserFactory()
    tracks = [make_track(artist=artist, title=f"Song {n:02d}") for n in range(51)]
    for number, track in enumerate(tracks):
        withdraw(track, at=_ago(days=5, minutes=60 - number))

    first = admin_client.get(detail(acme))
    second = admin_client.get(detail(acme), {"page": 2})

    first_rows = table_rows(first.text, "overdue-table")
    assert len(first_rows) == 50
    assert first_rows[0][0].startswith("Song 00")
    assert [row[0].split()[1] for row in table_rows(second.text, "overdue-table")] == [
        "50"
    ]
    assert "Page 1 of 2" in first.text and "51 in all" in first.text
    assert '<a href="?page=2">Next 50 →</a>' in first.text
    assert table_rows(admin_client.get(LIST).text, "partner-table")[0][4] == (
        "! 51 overdue"
    )
