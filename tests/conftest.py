import os
import shutil
import uuid

import pytest
from django.conf import settings
from django.db import connection

from tests.factories import StaffFactory, UserFactory

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@pytest.hookimpl(trylast=True)  # after -m has deselected what will not run
def pytest_collection_modifyitems(config, items):
    """Explain, per selected test, why it cannot run here; under
    REQUIRE_SERVICES a selected browser test without Chromium is an error."""
    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    has_chromium = shutil.which(CHROMIUM) is not None or os.path.exists(CHROMIUM)
    wants_browser = any("browser" in item.keywords for item in items)
    if REQUIRE_SERVICES and wants_browser and not has_chromium:
        raise pytest.UsageError(
            f"REQUIRE_SERVICES=1 but Chromium is missing at {CHROMIUM} "
            "(apt-get install -y chromium)"
        )
    why_not_postgres = (
        "running on the embedded stack (REFRAIN_TEST_STACK=embedded)"
        if settings.TEST_EMBEDDED
        else f"TEST_DATABASE_URL ({settings.TEST_DATABASE_URL}) is not reachable, "
        "running on SQLite"
    )
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(
                pytest.mark.skip(reason=f"needs PostgreSQL: {why_not_postgres}")
            )
        if "browser" in item.keywords and not has_chromium:
            item.add_marker(
                pytest.mark.skip(reason=f"needs Chromium at {CHROMIUM}: not installed")
            )


@pytest.fixture(scope="session", autouse=True)
def _clean_test_cache_keys():
    """Drop what earlier runs left in the shared Redis under this worker's prefix.

    allauth keeps rate-limit counters and used TOTP codes in the cache; stale
    entries from a previous run (same user ids) would make tests flaky.
    ``cache.clear()`` would flush the whole Redis database, other workers'
    keys included, so only our prefix is deleted.
    """
    from django.core.cache import cache

    prefix = settings.CACHES["default"].get("KEY_PREFIX")
    if prefix and hasattr(cache, "_cache"):
        client = cache._cache.get_client(write=True)
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
    yield


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return StaffFactory()


@pytest.fixture
def client_ip():
    """A fresh client address per test, so rate limits never leak across tests."""
    value = uuid.uuid4().int
    return f"10.{value % 250}.{(value >> 8) % 250}.{(value >> 16) % 250 + 1}"


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture(scope="session", autouse=True)
def _sqlite_flush_deletes_the_ledger_last():
    """On SQLite, let test flushes empty the append-only ledger.

    Its DELETE trigger refuses to delete a row while the row's track exists
    (PostgreSQL flushes with TRUNCATE, which row triggers do not see). Django
    deletes the tables in no particular order; this puts the ledger after the
    tracks, whose foreign keys are checked only at commit.
    """
    if connection.vendor != "sqlite":
        yield
        return
    DatabaseOperations = type(connection.ops)
    original = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *args, **kwargs):
        statements = original(self, style, tables, *args, **kwargs)
        return sorted(statements, key=lambda sql: "consent_ledgerentry" in sql)

    DatabaseOperations.sql_flush = sql_flush
    yield
    DatabaseOperations.sql_flush = original
