"""Sign-in by a code e-mailed to the account (allauth's login by code): the way
in that the failed-login lockout cannot close, and that needs the mailbox."""

import re

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from accounts.models import User
from tests.factories import TEST_PASSWORD

TOO_MANY = "Too many failed login attempts. Try again later."
REQUEST_URL = reverse("account_request_login_code")
CONFIRM_URL = reverse("account_confirm_login_code")
CODE = re.compile(r"^Your sign-in code is:\n\n(\S+)\n", re.MULTILINE)


def _code_from(message) -> str:
    match = CODE.search(message.body)
    assert match, message.body
    return match.group(1)


def _signed_in_as(client) -> str | None:
    return client.session.get("_auth_user_id")


def _other_ip(ip: str, n: int) -> str:
    head, last = ip.rsplit(".", 1)
    return f"{head}.{(int(last) + n) % 250 + 1}"


def _lock_out(user, client_ip: str) -> None:
    """Five wrong passwords for the artist's address, each from another
    address: allauth's per-address limit never fires, its per-account one
    (5/5m/key) does."""
    for attempt in range(5):
        attacker = Client(REMOTE_ADDR=_other_ip(client_ip, attempt + 1))
        response = attacker.post(
            reverse("account_login"), {"login": user.email, "password": "guess"}
        )
        assert response.status_code == 200
        assert "_auth_user_id" not in attacker.session


@pytest.fixture
def locked_out(user, client, client_ip):
    """The artist's account, locked against passwords: even the right one is
    refused."""
    _lock_out(user, client_ip)
    response = client.post(
        reverse("account_login"), {"login": user.email, "password": TEST_PASSWORD}
    )
    assert TOO_MANY in response.text
    assert _signed_in_as(client) is None
    return user


def test_a_locked_out_artist_signs_in_with_a_code_from_their_email(
    client, locked_out, mailoutbox
):
    # given an artist locked out by someone else's wrong passwords
    user = locked_out

    # when they ask for a code
    response = client.post(REQUEST_URL, {"email": user.email})

    # then one e-mail with the code goes to their address, and they are asked
    # for it
    assert response.status_code == 302
    assert response["Location"] == CONFIRM_URL
    assert [message.to for message in mailoutbox] == [[user.email]]
    assert mailoutbox[0].subject == "[Refrain] Your sign-in code"
    assert _signed_in_as(client) is None
    page = client.get(CONFIRM_URL)
    assert page.status_code == 200
    assert "Enter your sign-in code" in page.text
    assert 'class="site-header"' in page.text  # the site's layout

    # when they enter the code from the e-mail
    response = client.post(CONFIRM_URL, {"code": _code_from(mailoutbox[0])})

    # then they are signed in and reach their tracks
    assert response.status_code == 302
    assert response["Location"] == reverse("tracks:list")
    assert _signed_in_as(client) == str(user.pk)
    assert client.get(reverse("tracks:list")).status_code == 200
    assert User.objects.get(pk=user.pk).last_login is not None
    # and no further e-mail went out
    assert len(mailoutbox) == 1


def test_an_attacker_without_the_mailbox_gets_nowhere(
    client_ip, locked_out, mailoutbox
):
    # given an attacker who asks for a code for the artist's address
    attacker = Client(REMOTE_ADDR=_other_ip(client_ip, 20))
    response = attacker.post(REQUEST_URL, {"email": locked_out.email})
    assert response["Location"] == CONFIRM_URL
    real_code = _code_from(mailoutbox[0])
    # (the code went to the artist's mailbox, not to the attacker)
    assert [message.to for message in mailoutbox] == [[locked_out.email]]

    # when they guess three times
    for guess in ("AAAAAA", "BBBBBB", "CCCCCC"):
        assert guess != real_code
        attacker.post(CONFIRM_URL, {"code": guess})

    # then they are not signed in, and the code is dead: even the right one,
    # entered after the third wrong try, does nothing
    assert _signed_in_as(attacker) is None
    response = attacker.post(CONFIRM_URL, {"code": real_code})
    assert response.status_code == 302
    assert response["Location"] == REQUEST_URL
    assert _signed_in_as(attacker) is None
    assert User.objects.get(pk=locked_out.pk).last_login is None


def test_the_code_is_only_good_in_the_browser_that_asked_for_it(
    client, client_ip, user, mailoutbox
):
    # given a code asked for in one browser
    client.post(REQUEST_URL, {"email": user.email})
    code = _code_from(mailoutbox[0])

    # when another browser enters it
    other = Client(REMOTE_ADDR=_other_ip(client_ip, 30))
    response = other.post(CONFIRM_URL, {"code": code})

    # then it is sent to ask for a code of its own and nobody is signed in
    assert response.status_code == 302
    assert response["Location"] == REQUEST_URL
    assert _signed_in_as(other) is None
    assert User.objects.get(pk=user.pk).last_login is None


def test_the_sign_in_page_offers_the_code_in_plain_words(client, db):
    page = client.get(reverse("account_login"))

    assert page.status_code == 200
    assert (
        "Forgot your password, or signing in is paused after too many wrong "
        "tries? We can e-mail you a one-time code instead."
    ) in page.text
    assert f'href="{REQUEST_URL}"' in page.text
    assert "E-mail me a sign-in code" in page.text


def test_the_code_page_uses_the_site_layout_and_plain_words(client, db):
    page = client.get(REQUEST_URL)

    assert page.status_code == 200
    assert 'class="site-header"' in page.text
    assert "<h1>Sign in with a code</h1>" in page.text
    assert "only someone who can read your e-mail gets the code" in page.text


def test_the_words_say_how_long_a_code_lasts(client, user, mailoutbox):
    # the e-mail and the code page name the lifetime the setting gives
    minutes = settings.ACCOUNT_LOGIN_BY_CODE_TIMEOUT // 60
    assert settings.ACCOUNT_LOGIN_BY_CODE_MAX_ATTEMPTS == 3  # "three wrong tries"

    client.post(REQUEST_URL, {"email": user.email})
    page = client.get(CONFIRM_URL)

    assert f"It works once, for {minutes} minutes." in mailoutbox[0].body
    assert f"It works once, for {minutes} minutes; after three wrong tries" in (
        page.text
    )
