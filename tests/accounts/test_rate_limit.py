from django.urls import reverse

from accounts.models import User
from tests.factories import TEST_PASSWORD

WRONG_CREDENTIALS = "The email address and/or password you specified are not correct."
TOO_MANY = "Too many failed login attempts. Try again later."


def _sign_in(client, email: str, password: str, ip: str):
    return client.post(
        reverse("account_login"),
        {"login": email, "password": password},
        REMOTE_ADDR=ip,
    )


def _other_ip(ip: str) -> str:
    """The same address with its last octet changed."""
    head, last = ip.rsplit(".", 1)
    return f"{head}.{int(last) % 250 + 2}"


def _fail_ten_times(client, ip: str) -> None:
    # ten different e-mails, so the per-e-mail limit (5/5m/key) never fires
    for attempt in range(10):
        response = _sign_in(client, f"guess{attempt}@example.com", "wrong-guess", ip)
        assert response.status_code == 200, attempt
        assert WRONG_CREDENTIALS in response.text, attempt
        assert TOO_MANY not in response.text, attempt
        assert "_auth_user_id" not in client.session


def test_eleventh_failed_login_from_one_address_is_refused(client, user, client_ip):
    # given ten failed logins from one address within a minute
    _fail_ten_times(client, client_ip)

    # when a real user then signs in from that address with the right password
    response = _sign_in(client, user.email, TEST_PASSWORD, client_ip)

    # then the attempt is refused as rate-limited, and they are not signed in
    assert response.status_code == 200
    assert TOO_MANY in response.text
    assert WRONG_CREDENTIALS not in response.text
    assert "_auth_user_id" not in client.session
    assert User.objects.get(pk=user.pk).last_login is None
    assert client.get(reverse("tracks:list")).status_code == 302


def test_rate_limit_is_per_address(client, user, client_ip):
    # given an address that has used up its failed logins
    _fail_ten_times(client, client_ip)
    assert TOO_MANY in _sign_in(client, user.email, TEST_PASSWORD, client_ip).text

    # when the same user signs in from another address
    response = _sign_in(client, user.email, TEST_PASSWORD, _other_ip(client_ip))

    # then they are signed in
    assert response.status_code == 302
    assert response["Location"] == reverse("tracks:list")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert User.objects.get(pk=user.pk).last_login is not None


def test_successful_logins_do_not_count_towards_the_limit(client, user, client_ip):
    # given an address with nine failed logins and then one success
    for attempt in range(9):
        _sign_in(client, f"guess{attempt}@example.com", "wrong-guess", client_ip)
    assert _sign_in(client, user.email, TEST_PASSWORD, client_ip).status_code == 302
    client.post(reverse("account_logout"), REMOTE_ADDR=client_ip)

    # when the tenth failure comes
    response = _sign_in(client, "guess9@example.com", "wrong-guess", client_ip)

    # then it is still an ordinary wrong-credentials answer
    assert response.status_code == 200
    assert WRONG_CREDENTIALS in response.text
    assert TOO_MANY not in response.text
