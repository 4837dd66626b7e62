import time
from urllib.parse import quote

import pytest
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal import auth as totp_auth
from django.urls import reverse

from tests.factories import TEST_PASSWORD

INCORRECT_CODE = "Incorrect code."


class TOTPClock:
    """Stands in for the ``time`` module inside allauth's TOTP code.

    Pinning the clock keeps each code inside its 30-second window for the whole
    test (no flaky failure when a window turns over mid-test) and lets a test
    move to the next window without sleeping.
    """

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    @property
    def counter(self) -> int:
        return int(self.now) // mfa_settings.TOTP_PERIOD

    def next_period(self) -> None:
        self.now += mfa_settings.TOTP_PERIOD

    def code(self, secret: str, offset: int = 0) -> str:
        """The code an authenticator app shows, ``offset`` periods from now."""
        return totp_auth.format_hotp_value(
            totp_auth.hotp_value(secret, self.counter + offset)
        )


@pytest.fixture
def totp_clock(monkeypatch):
    clock = TOTPClock(time.time())
    monkeypatch.setattr(totp_auth, "time", clock)
    return clock


def _sign_in_with_password(client, user):
    return client.post(
        reverse("account_login"), {"login": user.email, "password": TEST_PASSWORD}
    )


def _enter_code(client, code: str):
    return client.post(reverse("mfa_authenticate"), {"code": code})


def _signed_in_as(client) -> str | None:
    return client.session.get("_auth_user_id")


def _open_totp_setup(client):
    """Open the TOTP set-up page, confirming the password when allauth asks.

    Adding an authenticator is a sensitive action: allauth 65 wants a fresh
    re-authentication even right after signing in.
    """
    activate_url = reverse("mfa_activate_totp")
    response = client.get(activate_url)
    assert response.status_code == 302
    assert response["Location"] == (
        f"{reverse('account_reauthenticate')}?next={quote(activate_url, safe='')}"
    )
    response = client.post(
        response["Location"], {"password": TEST_PASSWORD, "next": activate_url}
    )
    assert response.status_code == 302
    assert response["Location"] == activate_url
    page = client.get(activate_url)
    assert page.status_code == 200
    return page


def _activate_totp(client, user, clock: TOTPClock) -> str:
    """Sign in and enrol TOTP through the real views; return the secret.

    Ends signed out, one TOTP period later, so the activation code is never the
    one a later sign-in needs.
    """
    assert _sign_in_with_password(client, user).status_code == 302
    page = _open_totp_setup(client)
    secret = client.session[totp_auth.SECRET_SESSION_KEY]
    assert secret in page.text  # shown for manual entry next to the QR code

    response = client.post(reverse("mfa_activate_totp"), {"code": clock.code(secret)})

    # allauth generates recovery codes with the first authenticator
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_view_recovery_codes")
    assert totp_auth.SECRET_SESSION_KEY not in client.session
    assert sorted(
        Authenticator.objects.filter(user=user).values_list("type", flat=True)
    ) == sorted([Authenticator.Type.TOTP, Authenticator.Type.RECOVERY_CODES])

    assert client.post(reverse("account_logout")).status_code == 302
    assert _signed_in_as(client) is None
    clock.next_period()
    return secret


def test_activation_refuses_a_wrong_code(client, user, totp_clock):
    # given a signed-in artist on the TOTP set-up page
    _sign_in_with_password(client, user)
    _open_totp_setup(client)
    secret = client.session[totp_auth.SECRET_SESSION_KEY]

    # when they type a code from another window
    wrong = totp_clock.code(secret, offset=mfa_settings.TOTP_TOLERANCE + 1)
    response = client.post(reverse("mfa_activate_totp"), {"code": wrong})

    # then nothing is enrolled and the same secret is kept for the next try
    assert response.status_code == 200
    assert INCORRECT_CODE in response.text
    assert not Authenticator.objects.filter(user=user).exists()
    assert client.session[totp_auth.SECRET_SESSION_KEY] == secret


def test_totp_enrolment_then_sign_in_needs_the_code(client, user, totp_clock):
    # given an artist who enrolled TOTP and signed out
    secret = _activate_totp(client, user, totp_clock)

    # when they sign in with their password
    response = _sign_in_with_password(client, user)

    # then they are sent to the second step, not signed in yet
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    assert _signed_in_as(client) is None
    assert client.get(reverse("tracks:list")).status_code == 302

    # when they enter a wrong code (the one from the next window)
    wrong = totp_clock.code(secret, offset=mfa_settings.TOTP_TOLERANCE + 1)
    response = _enter_code(client, wrong)

    # then it is refused and they are still not signed in
    assert response.status_code == 200
    assert INCORRECT_CODE in response.text
    assert _signed_in_as(client) is None

    # when they enter the current code
    response = _enter_code(client, totp_clock.code(secret))

    # then they are signed in
    assert response.status_code == 302
    assert response["Location"] == reverse("tracks:list")
    assert _signed_in_as(client) == str(user.pk)
    assert client.get(reverse("tracks:list")).status_code == 200


def test_totp_code_cannot_be_used_twice(client, user, totp_clock):
    # given an artist who signed in with the current code, then signed out
    secret = _activate_totp(client, user, totp_clock)
    code = totp_clock.code(secret)
    _sign_in_with_password(client, user)
    assert _enter_code(client, code).status_code == 302
    assert _signed_in_as(client) == str(user.pk)
    client.post(reverse("account_logout"))

    # when the same code is replayed in a new sign-in, still inside its window
    _sign_in_with_password(client, user)
    response = _enter_code(client, code)

    # then it is refused
    assert response.status_code == 200
    assert INCORRECT_CODE in response.text
    assert _signed_in_as(client) is None

    # and the next window's code still works: the refusal was the replay
    totp_clock.next_period()
    response = _enter_code(client, totp_clock.code(secret))
    assert response.status_code == 302
    assert _signed_in_as(client) == str(user.pk)


def test_recovery_code_signs_in_once(client, user, totp_clock):
    # given an artist with TOTP and the recovery codes generated with it
    _activate_totp(client, user, totp_clock)
    recovery = Authenticator.objects.get(
        user=user, type=Authenticator.Type.RECOVERY_CODES
    )
    codes = recovery.wrap().get_unused_codes()
    assert len(codes) == mfa_settings.RECOVERY_CODE_COUNT
    code = codes[0]

    # when they sign in with one recovery code instead of the app
    _sign_in_with_password(client, user)
    response = _enter_code(client, code)

    # then they are signed in and that code is spent
    assert response.status_code == 302
    assert response["Location"] == reverse("tracks:list")
    assert _signed_in_as(client) == str(user.pk)
    recovery.refresh_from_db()
    assert recovery.wrap().get_unused_codes() == codes[1:]
    client.post(reverse("account_logout"))

    # when they try the same recovery code again
    _sign_in_with_password(client, user)
    response = _enter_code(client, code)

    # then it is refused and no other code is spent
    assert response.status_code == 200
    assert INCORRECT_CODE in response.text
    assert _signed_in_as(client) is None
    recovery.refresh_from_db()
    assert recovery.wrap().get_unused_codes() == codes[1:]
