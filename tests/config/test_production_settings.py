import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings

from consent.signing import new_signing_key

REQUIRED = (
    "DJANGO_SECRET_KEY",
    "REFRAIN_SIGNING_KEY",
    "DATABASE_URL",
    "ALLOWED_HOSTS",
    "CACHE_URL",
    "CELERY_BROKER_URL",
    "REFRAIN_SITE_URL",
)


def _production_env(**overrides: str) -> dict[str, str]:
    """The parent's environment without any of the required variables or a
    settings-module override, plus a complete production configuration."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in REQUIRED and name != "DJANGO_SETTINGS_MODULE"
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=secrets.token_hex(32),  # 64 characters
        REFRAIN_SIGNING_KEY=new_signing_key(),
        # never connected to by `check`; the test server's URL all the same
        DATABASE_URL=settings.TEST_DATABASE_URL,
        ALLOWED_HOSTS="refrain.example",
        # neither is connected to by `check` or by importing the WSGI app
        CACHE_URL="redis://127.0.0.1:6379/15",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/15",
        REFRAIN_SITE_URL="https://refrain.example",
    )
    env.update(overrides)
    return env


def _check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_pass_check_deploy_with_no_warning():
    env = _production_env()
    assert len(env["DJANGO_SECRET_KEY"]) == 64

    result = _check_deploy(env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize("missing", REQUIRED)
def test_production_refuses_to_start_without_a_required_variable(missing):
    # given a production environment with one required variable left out
    env = _production_env()
    del env[missing]

    # when Django starts
    result = _check_deploy(env)

    # then it stops, naming the variable
    assert result.returncode != 0
    assert f"Set the {missing} environment variable" in result.stderr
    assert "no issues" not in result.stdout


def test_production_uses_the_cache_and_broker_it_is_given():
    # given a production environment naming a Redis cache and broker
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.CACHES['default']['BACKEND'], s.CACHES['default']['LOCATION'], "
        "s.CELERY_BROKER_URL, s.CELERY_BROKER_TRANSPORT_OPTIONS)"
    )

    # when the settings load
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    # then both are used as given: nothing falls back to local memory or files
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(" ", 3) == [
        "django.core.cache.backends.redis.RedisCache",
        "redis://127.0.0.1:6379/15",
        "redis://127.0.0.1:6379/15",
        "{'visibility_timeout': 3600, 'socket_connect_timeout': 2.0}\n",
    ]


def test_the_wsgi_app_loads_every_view_and_freezes_them_for_the_collector():
    # given the production WSGI module as gunicorn imports it in a worker
    code = (
        "import gc, sys; import config.wsgi; "
        "print(gc.get_freeze_count(), 'consent.views' in sys.modules)"
    )

    # when it is imported
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    # then the views are loaded and what the process keeps for its whole life
    # (tens of thousands of objects) is out of the full collections' way
    assert result.returncode == 0, result.stderr
    frozen, views_loaded = result.stdout.split()
    assert int(frozen) > 50_000
    assert views_loaded == "True"
