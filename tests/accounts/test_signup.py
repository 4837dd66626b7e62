import re

from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse

from accounts.models import User

PASSWORD = "a-long-test-password-42"


def _confirmation_link(message) -> str:
    match = re.search(
        r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+/)", message.body
    )
    assert match, message.body
    return match.group(1)


def test_signup_verify_signin_signout(client, db):
    # given a visitor who signs up
    response = client.post(
        reverse("account_signup"),
        {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    # then they are told to verify and one e-mail is sent
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new@example.com"]
    assert mail.outbox[0].subject.startswith("[Refrain] ")
    assert not EmailAddress.objects.get(email="new@example.com").verified

    # when they follow the link and confirm
    link = _confirmation_link(mail.outbox[0])
    assert client.get(link).status_code == 200
    response = client.post(link)
    assert response.status_code == 302
    assert EmailAddress.objects.get(email="new@example.com").verified

    # then they can sign in and reach the dashboard
    client.logout()
    response = client.post(
        reverse("account_login"), {"login": "new@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("tracks:list")
    page = client.get(reverse("tracks:list"))
    assert page.status_code == 200
    assert "No tracks yet" in page.text

    # and sign out
    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert client.get(reverse("tracks:list")).status_code == 302


def test_unverified_user_cannot_sign_in(client, db):
    client.post(
        reverse("account_signup"),
        {"email": "late@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    client.logout()
    mail.outbox.clear()

    response = client.post(
        reverse("account_login"), {"login": "late@example.com", "password": PASSWORD}
    )

    # allauth withholds the session and re-sends the verification e-mail
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("tracks:list")).status_code == 302


def test_signup_rejects_mismatched_passwords_and_creates_nothing(client, db):
    response = client.post(
        reverse("account_signup"),
        {"email": "x@example.com", "password1": PASSWORD, "password2": PASSWORD + "x"},
    )
    assert response.status_code == 200
    assert "You must type the same password each time." in response.text
    assert not User.objects.filter(email="x@example.com").exists()
    assert mail.outbox == []


def test_signup_rejects_duplicate_email_case_insensitively(client, user):
    response = client.post(
        reverse("account_signup"),
        {"email": user.email.upper(), "password1": PASSWORD, "password2": PASSWORD},
    )
    # allauth's enumeration prevention: the page looks like success but no
    # second account appears
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert User.objects.filter(email__iexact=user.email).count() == 1


def test_allauth_pages_use_the_site_layout(client, db):
    for name in ("account_login", "account_signup", "account_reset_password"):
        page = client.get(reverse(name))
        assert page.status_code == 200
        assert 'class="site-header"' in page.text
        assert 'href="#main"' in page.text
        assert "htmx" in page.text
