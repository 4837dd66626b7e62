import re
from urllib.parse import urlsplit

import pytest
from allauth.account.models import EmailAddress
from playwright.sync_api import expect

pytestmark = [
    pytest.mark.browser,
    # pytest-playwright's stand-in for pytest-base-url defines a session fixture
    # as an instance method, which pytest 9 deprecates; not ours to fix.
    pytest.mark.filterwarnings(
        "ignore:Session-scoped fixtures defined as instance methods"
        ":pytest.PytestRemovedIn10Warning"
    ),
]

PASSWORD = "a-long-test-password-42"
EMAIL = "journey@example.com"
# allauth's default labels are "Email:" and "Password:"; the product's copy
# says "e-mail". Either spelling is accepted so the journey does not break
# when the labels are reworded.
EMAIL_LABEL = re.compile(r"^e-?mail:?$", re.IGNORECASE)
PASSWORD_LABEL = re.compile(r"^password:?$", re.IGNORECASE)
PASSWORD_AGAIN_LABEL = re.compile(r"^password \(again\):?$", re.IGNORECASE)
NARROW_WIDTH = 360


def _confirmation_path(message) -> str:
    match = re.search(r"https?://\S+/accounts/confirm-email/\S+/", message.body)
    assert match, message.body
    return urlsplit(match.group(0)).path


def test_signup_confirm_signin_reaches_empty_dashboard(
    page, live_server, mailoutbox, artifacts_dir
):
    # given a visitor on the sign-up page
    page.goto(f"{live_server.url}/accounts/signup/")

    # when they sign up
    page.get_by_label(EMAIL_LABEL).fill(EMAIL)
    page.get_by_label(PASSWORD_LABEL).fill(PASSWORD)
    page.get_by_label(PASSWORD_AGAIN_LABEL).fill(PASSWORD)
    page.get_by_role("button", name=re.compile(r"^sign up$", re.IGNORECASE)).click()

    # then they are asked to verify, and exactly one e-mail went out
    expect(page).to_have_url(f"{live_server.url}/accounts/confirm-email/")
    assert [message.to for message in mailoutbox] == [[EMAIL]]
    assert not EmailAddress.objects.get(email=EMAIL).verified

    # when they open the link and confirm
    page.goto(live_server.url + _confirmation_path(mailoutbox[0]))
    page.get_by_role("button", name="Confirm", exact=True).click()

    # then the address is verified and they are sent to sign in
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    assert EmailAddress.objects.get(email=EMAIL).verified

    # when they sign in
    page.get_by_label(EMAIL_LABEL).fill(EMAIL)
    page.get_by_label(PASSWORD_LABEL).fill(PASSWORD)
    # anchored: "Sign in with a passkey" is a button too
    page.get_by_role("button", name=re.compile(r"^sign in$", re.IGNORECASE)).click()

    # then they land on their empty dashboard
    expect(page).to_have_url(f"{live_server.url}/tracks/")
    expect(page.get_by_role("heading", level=1, name="Your tracks")).to_be_visible()
    expect(page.get_by_role("heading", name="No tracks yet")).to_be_visible()
    page.screenshot(path=artifacts_dir / "signup-journey.png", full_page=True)

    # and on a small phone the dashboard fits without sideways scrolling
    page.set_viewport_size({"width": NARROW_WIDTH, "height": 740})
    page.reload()
    expect(page.get_by_role("heading", name="No tracks yet")).to_be_visible()
    page.screenshot(path=artifacts_dir / "dashboard-360.png", full_page=True)
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= NARROW_WIDTH
    # and no further e-mail was sent along the way
    assert len(mailoutbox) == 1
