"""Security in a real browser: the Content-Security-Policy blocks nothing the
pages need (every browser test fails on a violation, see conftest.py; this
one opens the pages the other journeys do not: MFA, WebAuthn, the admin), and
a locked-out artist signs in with a code from their e-mail.

Controls are found by role and accessible name, as in the other journeys."""

import re
import time
from urllib.parse import urlsplit

import pytest
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.totp.internal import auth as totp_auth
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.test import Client
from playwright.sync_api import Page, expect

from tests.factories import TEST_PASSWORD, StaffFactory, UserFactory

pytestmark = [
    pytest.mark.browser,
    # pytest-playwright's stand-in for pytest-base-url defines a session fixture
    # as an instance method, which pytest 9 deprecates; not ours to fix.
    pytest.mark.filterwarnings(
        "ignore:Session-scoped fixtures defined as instance methods"
        ":pytest.PytestRemovedIn10Warning"
    ),
]

EMAIL_LABEL = re.compile(r"^e-?mail:?$", re.IGNORECASE)
PASSWORD_LABEL = re.compile(r"^password:?$", re.IGNORECASE)
CODE_LABEL = re.compile(r"^(authenticator )?code:?$", re.IGNORECASE)
SIGN_IN_CODE = re.compile(r"^Your sign-in code is:\n\n(\S+)\n", re.MULTILINE)


def _sign_in(page: Page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label(EMAIL_LABEL).fill(email)
    page.get_by_label(PASSWORD_LABEL).fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def _visit(page: Page, url: str, heading: str | re.Pattern) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)


def test_the_violation_check_sees_what_the_policy_blocks(
    page, live_server, csp_violations
):
    # given a page of the site
    page.goto(f"{live_server.url}/accounts/login/")
    assert csp_violations == []

    # when something on it tries to run an inline script
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.ranInline = true'; document.head.append(s); }"
    )

    # then the browser refuses, and the check hears of it twice: from the
    # page's violation event and from the console
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (
        any("script-src-elem blocked inline" in v for v in csp_violations)
        and any(v.startswith("console: ") for v in csp_violations)
    ):
        page.wait_for_timeout(50)
    assert page.evaluate("window.ranInline") is None
    assert any("script-src-elem blocked inline" in v for v in csp_violations)
    assert any(
        v.startswith("console: ") and "Content Security Policy" in v
        for v in csp_violations
    )
    csp_violations.clear()  # the point was to see it; the page itself is clean


def test_mfa_and_account_pages_work_under_the_policy(page, live_server, artifacts_dir):
    # given a signed-in artist
    artist = UserFactory(email="careful@example.com")
    _sign_in(page, live_server.url, artist.email)
    expect(page).to_have_url(f"{live_server.url}/tracks/")

    # when they open their account pages
    _visit(page, f"{live_server.url}/settings/", re.compile("settings", re.I))
    _visit(page, f"{live_server.url}/settings/tokens/", re.compile("token", re.I))
    _visit(page, f"{live_server.url}/accounts/email/", re.compile("e-?mail", re.I))
    _visit(page, f"{live_server.url}/accounts/2fa/", re.compile("two-factor", re.I))

    # and set up an authenticator app, confirming their password first
    page.goto(f"{live_server.url}/accounts/2fa/totp/activate/")
    page.get_by_label(PASSWORD_LABEL).fill(TEST_PASSWORD)
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Activate authenticator app"
    )
    # then the QR code (a data: image the policy allows) is drawn
    qr = page.locator("img[src^='data:image/svg+xml']")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.naturalWidth") > 0
    page.screenshot(path=artifacts_dir / "csp-totp.png", full_page=True)

    # and the security-key page loads allauth's WebAuthn scripts
    _visit(
        page,
        f"{live_server.url}/accounts/2fa/webauthn/add/",
        re.compile("security key", re.I),
    )
    assert page.evaluate("typeof window.allauth?.webauthn?.forms?.addForm") == (
        "function"
    )

    # and the API's documentation (Swagger UI, served from our static files)
    # draws the schema
    page.goto(f"{live_server.url}/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Refrain API")
    # (the page fixture fails the test if anything above was blocked)


def test_staff_pages_work_under_the_policy(page, live_server, monkeypatch):
    # given a superuser with an authenticator app, its clock pinned
    now = time.time()
    monkeypatch.setattr(totp_auth, "time", type("Clock", (), {"time": lambda: now}))
    staff = StaffFactory(email="root@example.com", is_superuser=True)
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)
    code = totp_auth.format_hotp_value(
        totp_auth.hotp_value(secret, int(now) // mfa_settings.TOTP_PERIOD)
    )

    # when they sign in with both factors and open the admin
    _sign_in(page, live_server.url, staff.email)
    page.get_by_label(CODE_LABEL).fill(code)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/tracks/")
    _visit(page, f"{live_server.url}/admin/", "Site administration")

    # then the admin's own scripts run: the sidebar filter and the changelist
    page.goto(f"{live_server.url}/admin/accounts/user/")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        re.compile("select user to change", re.I)
    )
    expect(page.locator("#toggle-nav-sidebar")).to_be_visible()
    page.get_by_role("link", name=re.compile("^Add user", re.I)).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add user")


def test_a_locked_out_artist_signs_in_with_a_code_from_their_email(
    page, live_server, mailoutbox, artifacts_dir
):
    # given an artist whose password sign-in is paused: someone tried five
    # wrong passwords for their address, each from another address
    # (allauth counts them per site and address; the site is the host)
    artist = UserFactory(email="locked@example.com")
    host = urlsplit(live_server.url).netloc
    for attempt in range(5):
        Client(REMOTE_ADDR=f"10.99.0.{attempt + 1}", HTTP_HOST=host).post(
            "/accounts/login/", {"login": artist.email, "password": "guess"}
        )
    _sign_in(page, live_server.url, artist.email)
    expect(page.get_by_text("Too many failed login attempts")).to_be_visible()

    # when they ask for a code instead, as the sign-in page offers
    page.get_by_role("link", name="E-mail me a sign-in code").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in with a code")
    page.screenshot(path=artifacts_dir / "login-code-request.png", full_page=True)
    page.get_by_label(EMAIL_LABEL).fill(artist.email)
    page.get_by_role("button", name="E-mail me a code").click()

    # then the code is in their e-mail, and the page asks for it
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your sign-in code")
    assert [message.to for message in mailoutbox] == [[artist.email]]
    code = SIGN_IN_CODE.search(mailoutbox[0].body).group(1)
    page.screenshot(path=artifacts_dir / "login-code-confirm.png", full_page=True)

    # when they enter it
    page.get_by_label(CODE_LABEL).fill(code)
    page.get_by_role("button", name="Sign in", exact=True).click()

    # then they are in, on their tracks
    expect(page).to_have_url(f"{live_server.url}/tracks/")
    expect(page.get_by_role("heading", level=1, name="Your tracks")).to_be_visible()
