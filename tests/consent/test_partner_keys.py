"""API keys: created once and shown once, stored hashed, scoped, revocable,
rate limited per key; every refusal a JSON error with a stable code."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from consent.models import ApiKey, Partner, PartnerLookup
from consent.partners.keys import key_digest
from tests.consent.helpers import GENAI
from tests.consent.partner_helpers import catalog_key, get, partner_key, post_json

pytestmark = pytest.mark.django_db

CHECK = "/api/v1/eligibility/check"
IMPORT = "/api/v1/catalog/import"
BODY = {"use": GENAI, "isrcs": ["US-RC1-76-07839"]}


def test_a_key_is_stored_hashed_with_its_prefix_and_shown_once():
    # given a key created for a partner
    partner, plaintext = partner_key()

    # then only its digest and its first 12 characters are kept
    key = ApiKey.objects.get(partner=partner)
    assert plaintext.startswith("rfk_") and len(plaintext) > 40
    assert key.key_hash == key_digest(plaintext) != plaintext
    assert key.prefix == plaintext[:12]
    assert plaintext not in str(list(ApiKey.objects.values()))


def test_a_partner_key_is_accepted_and_its_last_use_recorded(client):
    _, plaintext = partner_key()

    answer = post_json(client, CHECK, BODY, plaintext)

    assert answer.status_code == 200, answer.content
    assert ApiKey.objects.get().last_used_at is not None


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "unauthorized"),
        ("rfk_thisKeyWasNeverIssued000000000000000000", "unknown_key"),
        ("something-else", "unauthorized"),
    ],
)
def test_a_call_without_a_valid_key_is_a_401_with_a_code(client, header, code):
    answer = post_json(client, CHECK, BODY, header)

    assert answer.status_code == 401
    body = answer.json()
    assert body["code"] == code
    assert body["message"] == body["detail"] and body["message"].endswith(".")
    assert PartnerLookup.objects.count() == 0


def test_a_revoked_key_is_refused_from_the_next_request(client):
    # given a key that worked
    _, plaintext = partner_key()
    assert post_json(client, CHECK, BODY, plaintext).status_code == 200

    # when it is revoked from the command line
    out = StringIO()
    call_command("apikeys", "revoke", plaintext[:12], stdout=out)

    # then the next call is refused, saying why
    answer = post_json(client, CHECK, BODY, plaintext)
    assert answer.status_code == 401
    assert answer.json()["code"] == "key_revoked"
    assert "Revoked" in out.getvalue()


def test_a_catalog_key_cannot_call_partner_endpoints(client):
    plaintext = catalog_key()

    for answer in (
        post_json(client, CHECK, BODY, plaintext),
        get(client, "/api/v1/changes", plaintext),
        get(client, "/api/v1/eligibility/export", plaintext, use=GENAI),
        post_json(client, "/api/v1/acknowledgements", {}, plaintext),
    ):
        assert answer.status_code == 403, answer.content
        assert answer.json()["code"] == "wrong_scope"


def test_a_partner_key_cannot_import_the_catalogue(client):
    _, plaintext = partner_key()

    answer = client.post(
        IMPORT,
        data="isrc,title,artist_email,license_class,label,duration_ms\n",
        content_type="text/csv",
        headers={"Authorization": f"Bearer {plaintext}"},
    )

    assert answer.status_code == 403
    assert answer.json()["code"] == "wrong_scope"


def test_a_catalog_key_imports_the_catalogue(client):
    plaintext = catalog_key()

    answer = client.post(
        IMPORT,
        data=(
            "isrc,title,artist_email,license_class,label,duration_ms\n"
            "US-RC1-76-07839,Night Drive,new.artist@example.com,independent,,215000\n"
            "not-an-isrc,Broken,someone@example.com,independent,,\n"
        ),
        content_type="text/csv",
        headers={"Authorization": f"Bearer {plaintext}"},
    )

    assert answer.status_code == 200, answer.content
    report = answer.json()
    assert (report["created"], report["rejected"]) == (1, 1)
    assert report["errors"][0]["line"] == 3


def test_the_rate_limit_holds_per_key_with_retry_after(client):
    # given a key allowed three requests a minute, and another key
    _, limited = partner_key("Small AI", rate_limit=3)
    _, other = partner_key("Other AI", rate_limit=3)

    # when it makes four
    statuses = [post_json(client, CHECK, BODY, limited).status_code for _ in range(4)]

    # then the fourth is a 429 that says when to come back; the other key is
    # not affected
    assert statuses == [200, 200, 200, 429]
    refused = post_json(client, CHECK, BODY, limited)
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert post_json(client, CHECK, BODY, other).status_code == 200


def test_the_command_creates_lists_and_refuses(db):
    out = StringIO()
    call_command(
        "apikeys", "create", "--name", "Acme AI", "--scope", "partner", stdout=out
    )
    printed = out.getvalue()
    plaintext = printed.strip().splitlines()[-1]
    assert plaintext.startswith("rfk_")
    assert Partner.objects.get().name == "Acme AI"
    key = ApiKey.objects.get()
    assert key.key_hash == key_digest(plaintext)

    out = StringIO()
    call_command(
        "apikeys", "create", "--name", "feed", "--scope", "catalog", stdout=out
    )
    out = StringIO()
    call_command("apikeys", "list", stdout=out)
    listing = out.getvalue()
    assert key.prefix in listing and "catalog" in listing and "never" in listing
    assert plaintext not in listing

    with pytest.raises(CommandError, match="No key starts with"):
        call_command("apikeys", "revoke", "rfk_nothing")
    with pytest.raises(CommandError, match="belongs to no partner"):
        call_command(
            "apikeys", "create", "--name", "x", "--scope", "catalog", "--partner", "y"
        )
    with pytest.raises(CommandError, match="rate limit"):
        call_command(
            "apikeys",
            "create",
            "--name",
            "x",
            "--scope",
            "partner",
            "--rate-limit",
            "0",
        )
    assert ApiKey.objects.count() == 2
    assert Partner.objects.count() == 1
