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
from pathlib import Path

import pytest

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
    deletes what data migrations created, such as the shipped consent policy.
    A serialized rollback reloads that content before each browser test.
    """
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(
                pytest.mark.django_db(transaction=True, serialized_rollback=True)
            )
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


@pytest.fixture
def page(page):
    """Fail in seconds, not Playwright's default 30, when an element never shows."""
    page.set_default_timeout(10_000)
    page.set_default_navigation_timeout(15_000)
    return page
