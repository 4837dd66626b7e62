"""Playwright against Debian's Chromium and pytest-django's live server.

Playwright's sync API marks its asyncio loop as running in the test thread
from the moment the session-scoped ``playwright`` fixture starts until it
stops, so every ORM call made in between (the live-server test's database
flush, and any test an xdist worker runs after a browser test) raises
SynchronousOnlyOperation. Nothing here runs the ORM inside a coroutine, so the
check is switched off with DJANGO_ALLOW_ASYNC_UNSAFE for exactly that window,
and browser tests are collected last so that no other test runs inside it:
the variable is inherited by subprocesses, and ``check --deploy`` fails on it
(async.E001).
"""

import os
import time
from pathlib import Path

import pytest
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.totp.internal import auth as totp_auth
from django.utils import timezone

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    # Containers and CI runners have no user namespaces for the sandbox.
    "--no-sandbox",
    "--disable-gpu",
    # The app must work offline: no phoning home while a test runs.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS_DIR = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """Run browser tests after every other test, in each xdist worker too, and
    give each one the rows the migrations wrote.

    A live-server test runs against committed data, so the database is
    flushed after it (and after any other transactional test), which also
    deletes what data migrations created, such as the shipped consent policy;
    ``_shipped_policy`` puts it back. (A serialized rollback cannot: Playwright
    runs an event loop in the test thread, so Django hands the test another
    connection object, one without the serialized copy of the database.)
    """
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.django_db(transaction=True))
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="session")
def _allow_async_unsafe():
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="session")
def playwright(_allow_async_unsafe, playwright):
    """pytest-playwright's, started after and stopped before the switch-off."""
    return playwright


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, pytestconfig):
    """Launch the system Chromium: Playwright's own download is not available."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM_PATH,
        "args": CHROMIUM_ARGS,
        "headless": not pytestconfig.getoption("--headed"),
    }


@pytest.fixture
def artifacts_dir() -> Path:
    """``tests/artifacts/`` (git-ignored), for screenshots worth looking at."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR


# Runs in every document before its own scripts (Playwright injects it outside
# the page's Content-Security-Policy) and reports each violation to Python.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.refrainCspViolation(
    `${event.effectiveDirective} blocked ${event.blockedURI || "inline"}`
    + ` on ${event.documentURI} (${event.sourceFile}:${event.lineNumber})`
  );
});
"""


class CspViolations(list):
    """What the browser refused under the Content-Security-Policy, both as
    ``securitypolicyviolation`` events and as console errors."""

    def from_page(self, text: str) -> None:
        self.append(text)

    def from_console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.append(f"console: {message.text}")


@pytest.fixture
def csp_violations() -> CspViolations:
    return CspViolations()


@pytest.fixture
def page(page, csp_violations):
    """Fail in seconds, not Playwright's default 30, when an element never shows;
    and fail any browser test on whose pages the browser blocked something
    under the Content-Security-Policy (an inline script or style, a foreign
    source): a blocked script is a feature that silently stopped working."""
    page.set_default_timeout(10_000)
    page.set_default_navigation_timeout(15_000)
    page.expose_function("refrainCspViolation", csp_violations.from_page)
    page.add_init_script(REPORT_CSP_VIOLATIONS)
    page.on("console", csp_violations.from_console)
    yield page
    assert list(csp_violations) == [], "the browser reported CSP violations"


@pytest.fixture(autouse=True)
def _shipped_policy(request):
    """Reinstall policy v1 (the shipped rules) when a flush removed it."""
    if request.node.get_closest_marker("browser") is None:
        return
    request.getfixturevalue("transactional_db")
    from consent.models import PolicyRule, PolicyVersion
    from consent.policy import SHIPPED_RULES

    if PolicyVersion.objects.exists():
        return
    version = PolicyVersion.objects.create(
        number=1, reason="Shipped policy", applied_at=timezone.now()
    )
    PolicyRule.objects.bulk_create(
        [
            PolicyRule(version=version, license_class=cls, use=use, rule=rule)
            for (cls, use), rule in SHIPPED_RULES.items()
        ]
    )


@pytest.fixture
def totp_code(monkeypatch):
    """A staff member's authenticator app: the code for a secret, with
    allauth's clock pinned for the test so a code never rolls over between
    reading and typing it."""
    now = time.time()
    monkeypatch.setattr(totp_auth, "time", type("Clock", (), {"time": lambda: now}))

    def code(secret: str) -> str:
        counter = int(now) // mfa_settings.TOTP_PERIOD
        return totp_auth.format_hotp_value(totp_auth.hotp_value(secret, counter))

    return code
