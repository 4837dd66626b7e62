import os
import shutil
import uuid
from importlib import import_module

import pytest
from django.conf import settings
from django.db import connection

from tests.factories import StaffFactory, UserFactory

SQLITE_ANCHOR_TRIGGERS = import_module(
    "consent.migrations.0015_ledger_anchors_and_no_truncate"
).SQLITE_FORWARD

ANCHOR_NO_DELETE = next(
    sql for sql in SQLITE_ANCHOR_TRIGGERS if "consent_anchor_no_delete" in sql
)
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
def _test_flushes_go_around_the_append_only_triggers():
    """Let test flushes empty the append-only ledger and anchor tables.

    PostgreSQL flushes with TRUNCATE, which a statement trigger refuses on
    both tables: the flush's own transaction sets ``session_replication_role
    = replica`` (superuser only; it ends with the transaction), under which
    triggers do not fire. Production keeps the triggers: only this test
    flush sets it.

    SQLite deletes row by row. The ledger's DELETE trigger refuses to delete
    a row while the row's track exists, so the ledger goes after the tracks
    (whose foreign keys are checked only at commit); the anchors' DELETE
    trigger refuses every row, so the flush drops it and creates it again.
    """
    DatabaseOperations = type(connection.ops)
    original = DatabaseOperations.sql_flush

    if connection.vendor == "postgresql":

        def sql_flush(self, style, tables, *args, **kwargs):
            statements = original(self, style, tables, *args, **kwargs)
            if not statements:
                return statements
            return ["SET LOCAL session_replication_role = replica", *statements]

    else:

        def sql_flush(self, style, tables, *args, **kwargs):
            statements = original(self, style, tables, *args, **kwargs)
            statements = sorted(
                statements, key=lambda sql: "consent_ledgerentry" in sql
            )
            if "consent_ledgeranchor" not in tables:
                return statements
            return [
                "DROP TRIGGER IF EXISTS consent_anchor_no_delete",
                *statements,
                ANCHOR_NO_DELETE,
            ]

    DatabaseOperations.sql_flush = sql_flush
    yield
    DatabaseOperations.sql_flush = original
