import hashlib
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import PersonalAccessToken
from accounts.services import token_authenticate, token_create, token_revoke
from tests.api_errors import api_error
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TOKENS_URL = reverse("accounts:tokens")
API_URL = "/api/v1/me/tracks"
PLAINTEXT = re.compile(r'<code id="new-token"[^>]*>(rfn_[A-Za-z0-9_-]+)</code>')


def _revoke_url(token: PersonalAccessToken) -> str:
    return reverse("accounts:token_revoke", kwargs={"token_id": token.pk})


def _bearer(plaintext: str) -> dict:
    return {"Authorization": f"Bearer {plaintext}"}


# --- Services -------------------------------------------------------------------


def test_token_create_stores_only_the_hash_and_prefix(user):
    # when a token is created
    token, plaintext = token_create(user=user, name="  release script  ")

    # then the plaintext is rfn_ and 256 random bits, and only its hash and
    # first 8 characters are kept
    assert re.fullmatch(r"rfn_[A-Za-z0-9_-]{43}", plaintext)
    token.refresh_from_db()
    assert token.name == "release script"
    assert token.token_prefix == plaintext[:8]
    assert token.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert token.last_used_at is None
    assert token.revoked_at is None
    assert plaintext not in str(
        PersonalAccessToken.objects.filter(pk=token.pk).values().get()
    )


def test_two_tokens_never_share_a_plaintext(user):
    _, first = token_create(user=user, name="a")
    _, second = token_create(user=user, name="b")
    assert first != second


def test_token_authenticate_finds_the_user_and_records_last_use(user):
    token, plaintext = token_create(user=user, name="cli")

    assert token_authenticate(plaintext=plaintext) == user

    token.refresh_from_db()
    assert token.last_used_at is not None


def test_last_use_is_written_at_most_once_a_minute(user, django_assert_num_queries):
    # given a token used a few seconds ago
    token, plaintext = token_create(user=user, name="cli")
    recently = timezone.now() - timedelta(seconds=5)
    PersonalAccessToken.objects.filter(pk=token.pk).update(last_used_at=recently)

    # when it is used again, only the lookup runs (no UPDATE)
    with django_assert_num_queries(1):
        assert token_authenticate(plaintext=plaintext) == user
    token.refresh_from_db()
    assert token.last_used_at == recently


@pytest.mark.parametrize(
    "plaintext",
    ["rfn_unknown", "not-a-token", "", "rfn_" + "x" * 300],
    ids=["unknown", "no-prefix", "empty", "too-long"],
)
def test_token_authenticate_refuses_unknown_tokens(user, plaintext):
    token_create(user=user, name="cli")
    assert token_authenticate(plaintext=plaintext) is None


def test_a_revoked_token_or_an_inactive_user_is_refused(user):
    token, plaintext = token_create(user=user, name="cli")
    _, other_plaintext = token_create(user=user, name="other")

    assert token_revoke(user=user, token_id=token.pk) is True
    assert token_authenticate(plaintext=plaintext) is None

    user.is_active = False
    user.save(update_fields=["is_active"])
    assert token_authenticate(plaintext=other_plaintext) is None


def test_token_revoke_is_idempotent_and_owner_only(user):
    token, _ = token_create(user=user, name="cli")
    stranger = UserFactory()

    with pytest.raises(PersonalAccessToken.DoesNotExist):
        token_revoke(user=stranger, token_id=token.pk)
    token.refresh_from_db()
    assert token.revoked_at is None

    assert token_revoke(user=user, token_id=token.pk) is True
    token.refresh_from_db()
    first_revoked_at = token.revoked_at
    assert token_revoke(user=user, token_id=token.pk) is False
    token.refresh_from_db()
    assert token.revoked_at == first_revoked_at


# --- The settings page ------------------------------------------------------------


def test_tokens_page_needs_sign_in(client):
    response = client.get(TOKENS_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_settings_navigation_links_to_the_tokens_page(client, user):
    client.force_login(user)
    page = client.get(reverse("accounts:profile"))
    assert f'href="{TOKENS_URL}"' in page.text


def test_creating_a_token_shows_its_plaintext_once(client, user):
    # given a signed-in artist on the tokens page
    client.force_login(user)
    assert "You have no tokens." in client.get(TOKENS_URL).text

    # when they create a token
    response = client.post(TOKENS_URL, {"name": "Release script"})

    # then the answer shows the plaintext once, with a warning, uncached
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    match = PLAINTEXT.search(response.text)
    assert match is not None
    plaintext = match.group(1)
    assert "It is shown only this once" in response.text
    token = PersonalAccessToken.objects.get(user=user)
    assert token.name == "Release script"
    assert token.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()

    # and the list shows name, prefix, created, never used, but not the token
    page = client.get(TOKENS_URL)
    assert plaintext not in page.text
    assert "Release script" in page.text
    assert f"{plaintext[:8]}…" in page.text
    assert "Never" in page.text

    # and the token works on the API, without any CSRF token
    api = Client(enforce_csrf_checks=True)
    assert api.get(API_URL, headers=_bearer(plaintext)).status_code == 200
    assert "Never" not in client.get(TOKENS_URL).text


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "This field is required."),
        ("   ", "This field is required."),
        ("n" * 101, "Ensure this value has at most 100 characters (it has 101)."),
        ("bad\x07name", "The token name cannot contain control characters."),
    ],
    ids=["empty", "blank", "101-chars", "control-char"],
)
def test_a_token_needs_a_valid_name(client, user, name, error):
    client.force_login(user)

    response = client.post(TOKENS_URL, {"name": name})

    assert response.status_code == 400
    assert error in response.text
    assert PLAINTEXT.search(response.text) is None
    assert not PersonalAccessToken.objects.exists()


def test_a_name_of_100_characters_is_accepted(client, user):
    client.force_login(user)
    response = client.post(TOKENS_URL, {"name": "n" * 100})
    assert response.status_code == 200
    assert PersonalAccessToken.objects.get(user=user).name == "n" * 100


def test_the_page_lists_only_the_artists_working_tokens(client, user):
    mine, _ = token_create(user=user, name="Mine")
    gone, _ = token_create(user=user, name="Gone")
    token_revoke(user=user, token_id=gone.pk)
    token_create(user=UserFactory(), name="Someone else's")
    client.force_login(user)

    page = client.get(TOKENS_URL).text

    assert "Mine" in page
    assert "Gone" not in page
    assert "Someone else" not in page
    assert f'action="{_revoke_url(mine)}"' in page


def test_revoking_a_token_refuses_it_on_the_api(client, user):
    # given a token that works
    token, plaintext = token_create(user=user, name="cli")
    api = Client()
    assert api.get(API_URL, headers=_bearer(plaintext)).status_code == 200
    client.force_login(user)

    # when the artist revokes it
    response = client.post(_revoke_url(token))

    # then it is revoked and refused from then on
    assert response.status_code == 302
    assert response["Location"] == TOKENS_URL
    token.refresh_from_db()
    assert token.revoked_at is not None
    refused = api.get(API_URL, headers=_bearer(plaintext))
    assert refused.status_code == 401
    assert refused.json() == api_error(
        "unauthorized", "The access token is unknown or has been revoked."
    )
    assert "The token was revoked." in client.get(TOKENS_URL).text


def test_revoking_needs_post_and_csrf(user):
    token, _ = token_create(user=user, name="cli")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)

    assert browser.get(_revoke_url(token)).status_code == 405
    assert browser.post(_revoke_url(token)).status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None


def test_creating_needs_csrf(user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)

    assert browser.post(TOKENS_URL, {"name": "cli"}).status_code == 403
    assert not PersonalAccessToken.objects.exists()


def test_another_artists_token_cannot_be_revoked(client, user):
    token, plaintext = token_create(user=UserFactory(), name="theirs")
    client.force_login(user)

    response = client.post(_revoke_url(token))

    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.parametrize(
    "header",
    ["Bearer rfn_doesnotexist", "Bearer something-else", "Bearer "],
    ids=["unknown", "not-ours", "empty"],
)
def test_an_unknown_bearer_token_is_a_401(user, header):
    token_create(user=user, name="cli")
    response = Client().get(API_URL, headers={"Authorization": header})
    assert response.status_code == 401


def test_no_credentials_is_a_401():
    assert Client().get(API_URL).status_code == 401
