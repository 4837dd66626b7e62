"""config/settings/test.py: REFRAIN_TEST_STACK=embedded runs on the embedded
default whatever is reachable, and then requires no service."""

import os
import subprocess
import sys

from django.conf import settings

SHOW = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DATABASES['default']['ENGINE'], s.CACHES['default']['BACKEND'], "
    "s.CELERY_BROKER_URL)"
)


def _test_settings(**variables: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    env.update(variables)
    return subprocess.run(
        [sys.executable, "-c", SHOW],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_embedded_stack_ignores_reachable_services_and_requires_none():
    # given services that answer (the real ones in CI) and REQUIRE_SERVICES=1
    result = _test_settings(REFRAIN_TEST_STACK="embedded", REQUIRE_SERVICES="1")

    # then the settings load on SQLite, local memory and the filesystem broker
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "django.core.cache.backends.locmem.LocMemCache",
        "filesystem://localhost/",
    ]


def test_services_are_still_required_on_the_default_stack():
    # given nothing listening where the services should be
    result = _test_settings(
        REFRAIN_TEST_STACK="auto",
        REQUIRE_SERVICES="1",
        TEST_DATABASE_URL="postgres://postgres@127.0.0.1:1/refrain",
        TEST_REDIS_URL="redis://127.0.0.1:1/0",
    )

    assert result.returncode != 0
    assert "REQUIRE_SERVICES=1 but PostgreSQL at" in result.stderr


def test_an_unknown_stack_is_refused():
    result = _test_settings(REFRAIN_TEST_STACK="postgres")

    assert result.returncode != 0
    assert "REFRAIN_TEST_STACK must be auto or embedded" in result.stderr
