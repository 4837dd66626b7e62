import re

import pytest
from allauth.account.utils import user_pk_to_url_str
from django.contrib.auth.hashers import check_password
from django.core import mail
from django.urls import reverse

from accounts.models import User
from tests.factories import TEST_PASSWORD, UserFactory

NEW_PASSWORD = "a-brand-new-password-77"
BAD_TOKEN = "The password reset link was invalid"
WRONG_CREDENTIALS = "The email address and/or password you specified are not correct."


def _reset_link(message) -> tuple[str, str, str]:
    """Return the path of the reset link in the mail, its uidb36 and its key."""
    match = re.search(
        r"https?://[^/\s]+(/accounts/password/reset/key/([0-9A-Za-z]+)-([^\s/]+)/)",
        message.body,
    )
    assert match, message.body
    return match.group(1), match.group(2), match.group(3)


def _sign_in(client, email: str, password: str):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def _request_reset(client, email: str):
    return client.post(reverse("account_reset_password"), {"email": email})


def test_password_reset_through_the_email(client, user):
    # given an artist who forgot their password and asks for a reset
    response = _request_reset(client, user.email)

    # then they are told to check their mail and exactly one mail goes to them
    assert response.status_code == 302
    assert response["Location"] == reverse("account_reset_password_done")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [user.email]
    assert mail.outbox[0].subject.startswith("[Refrain] ")

    # when they follow the link, allauth moves the key into the session and
    # redirects to a key-less URL, so the key cannot leak through Referer
    link, uidb36, key = _reset_link(mail.outbox[0])
    response = client.get(link)
    set_password_url = reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": uidb36, "key": "set-password"},
    )
    assert response.status_code == 302
    assert response["Location"] == set_password_url
    assert key not in response["Location"]

    form_page = client.get(set_password_url)
    assert form_page.status_code == 200
    assert BAD_TOKEN not in form_page.text

    # and set a new password
    response = client.post(
        set_password_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )

    # then the password is changed, and the reset does not sign them in
    assert response.status_code == 302
    assert response["Location"] == reverse("account_reset_password_from_key_done")
    assert "_auth_user_id" not in client.session
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert not user.check_password(TEST_PASSWORD)

    # and the link is spent: following it again shows the bad-token page
    spent = client.get(link)
    assert spent.status_code == 200
    assert BAD_TOKEN in spent.text

    # and the old password is refused while the new one signs in
    response = _sign_in(client, user.email, TEST_PASSWORD)
    assert response.status_code == 200
    assert WRONG_CREDENTIALS in response.text
    assert "_auth_user_id" not in client.session

    response = _sign_in(client, user.email, NEW_PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == reverse("tracks:list")
    assert client.session["_auth_user_id"] == str(user.pk)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(
            lambda key: key[:-1] + ("a" if key[-1] != "a" else "b"), id="edited"
        ),
        pytest.param(lambda key: key[: len(key) // 2], id="truncated"),
        pytest.param(lambda key: "0-0", id="replaced"),
    ],
)
def test_tampered_reset_token_is_refused(client, user, tamper):
    # given a reset mail for a real account
    _request_reset(client, user.email)
    link, uidb36, key = _reset_link(mail.outbox[0])
    bad_url = reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": uidb36, "key": tamper(key)},
    )
    password_before = user.password

    # when someone opens the link with a tampered token and tries to post a password
    page = client.get(bad_url)
    posted = client.post(
        bad_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )

    # then both show the invalid-link page, and nothing changes
    for response in (page, posted):
        assert response.status_code == 200
        assert "Invalid link" in response.text
        assert BAD_TOKEN in response.text
    assert "_password_reset_key" not in client.session
    user.refresh_from_db()
    assert user.password == password_before
    assert user.check_password(TEST_PASSWORD)
    assert "_auth_user_id" not in client.session


def test_key_less_url_without_a_key_in_the_session_is_refused(client, user):
    # given a fresh visitor who never followed a reset link
    password_before = user.password
    url = reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": "1", "key": "set-password"},
    )

    # when they post a new password straight to the key-less URL
    response = client.post(url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    # then they get the bad-token page and no password changes
    assert response.status_code == 200
    assert BAD_TOKEN in response.text
    user.refresh_from_db()
    assert user.password == password_before


def test_reset_link_for_one_account_does_not_work_for_another(client, user):
    # given a reset mail for one account and a second account
    other = UserFactory()
    _request_reset(client, user.email)
    _, _, key = _reset_link(mail.outbox[0])
    other_url = reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": user_pk_to_url_str(other), "key": key},
    )
    other_password = other.password

    # when the key is replayed against the other account
    response = client.get(other_url)

    # then it is refused and the other account is untouched
    assert response.status_code == 200
    assert BAD_TOKEN in response.text
    other.refresh_from_db()
    assert other.password == other_password


def test_reset_for_unknown_email_changes_no_account(client, user):
    # given an existing account and an address nobody signed up with
    users_before = list(
        User.objects.order_by("pk").values_list("pk", "email", "password")
    )

    # when someone asks for a reset of the unknown address
    response = _request_reset(client, "nobody@example.com")

    # then the answer looks exactly like a real reset (no account enumeration)
    assert response.status_code == 302
    assert response["Location"] == reverse("account_reset_password_done")

    # and no account is created or changed
    assert (
        list(User.objects.order_by("pk").values_list("pk", "email", "password"))
        == users_before
    )
    assert not User.objects.filter(email__iexact="nobody@example.com").exists()
    assert check_password(TEST_PASSWORD, User.objects.get(pk=user.pk).password)

    # and the only mail goes to the address that was typed, with no reset link
    assert [m.to for m in mail.outbox] == [["nobody@example.com"]]
    assert "/accounts/password/reset/key/" not in mail.outbox[0].body
