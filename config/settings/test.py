"""Test settings: PostgreSQL and Redis when reachable, the embedded default otherwise.

``TEST_DATABASE_URL`` and ``TEST_REDIS_URL`` point at the services (default: the
local ones). With ``REQUIRE_SERVICES=1`` a missing service is an error, so CI can
never pass by silently running on SQLite.

``REFRAIN_TEST_STACK=embedded`` runs on the embedded default (SQLite, kombu's
``filesystem://`` broker, a local-memory cache) even when the services are
reachable, and then requires none of them: ``make test`` runs the suite once on
each stack, so both write paths are exercised. The default, ``auto``, is the
behaviour above.
"""

import os
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import database_from_url, env

REQUIRE_SERVICES = env.bool("REQUIRE_SERVICES", default=False)
TEST_DATABASE_URL = env.str(
    "TEST_DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/refrain"
)
TEST_REDIS_URL = env.str("TEST_REDIS_URL", default="redis://127.0.0.1:6379/0")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1
        ):
            return True
    except OSError:
        return False


TEST_STACK = env.str("REFRAIN_TEST_STACK", default="auto")
if TEST_STACK not in ("auto", "embedded"):
    raise ImproperlyConfigured(
        f"REFRAIN_TEST_STACK must be auto or embedded, not {TEST_STACK!r}"
    )
TEST_EMBEDDED = TEST_STACK == "embedded"
# Whether the suite runs on each service (names kept from when reachability
# alone decided it).
POSTGRES_AVAILABLE = not TEST_EMBEDDED and _reachable(TEST_DATABASE_URL, 5432)
REDIS_AVAILABLE = not TEST_EMBEDDED and _reachable(TEST_REDIS_URL, 6379)
if (
    REQUIRE_SERVICES
    and not TEST_EMBEDDED
    and not (POSTGRES_AVAILABLE and REDIS_AVAILABLE)
):
    raise ImproperlyConfigured(
        "REQUIRE_SERVICES=1 but "
        + ", ".join(
            name
            for name, ok in (
                (f"PostgreSQL at {TEST_DATABASE_URL}", POSTGRES_AVAILABLE),
                (f"Redis at {TEST_REDIS_URL}", REDIS_AVAILABLE),
            )
            if not ok
        )
        + " is not reachable"
    )

# Each xdist worker gets its own key space (and pytest-django its own database);
# REFRAIN_TEST_ID keeps two runs on one machine apart (give each its own
# TEST_DATABASE_URL too).
_WORKER = env.str("REFRAIN_TEST_ID", default="") + os.environ.get(
    "PYTEST_XDIST_WORKER", "main"
)
TEST_TMP_DIR = Path(tempfile.gettempdir()) / f"refrain-test-{os.getpid()}"
TEST_TMP_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = False
SECRET_KEY = "test-only-secret-key-not-for-production-" + "x" * 20
# A fixed Ed25519 seed (32 bytes of 0x07, base64url): tests only.
REFRAIN_SIGNING_KEY = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]

if POSTGRES_AVAILABLE:
    DATABASES = {"default": database_from_url(TEST_DATABASE_URL)}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    DATABASES = {
        "default": database_from_url(f"sqlite:///{TEST_TMP_DIR / 'db.sqlite3'}")
    }

if REDIS_AVAILABLE:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": TEST_REDIS_URL,
            "KEY_PREFIX": f"refrain-test-{_WORKER}",
        }
    }
    CELERY_BROKER_URL = TEST_REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 3600,
        "global_keyprefix": f"refrain-test-{_WORKER}-",
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"refrain-test-{_WORKER}",
        }
    }
    CELERY_BROKER_URL = "filesystem://localhost/"
    for _folder in ("queue", "processed", "control"):
        (TEST_TMP_DIR / "broker" / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(TEST_TMP_DIR / "broker" / "queue"),
        "data_folder_out": str(TEST_TMP_DIR / "broker" / "queue"),
        "processed_folder": str(TEST_TMP_DIR / "broker" / "processed"),
        "control_folder": str(TEST_TMP_DIR / "broker" / "control"),
        "store_processed": False,
    }

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = str(TEST_TMP_DIR / "media")
STATIC_ROOT = str(TEST_TMP_DIR / "staticfiles")
Path(STATIC_ROOT).mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
REFRAIN_STAFF_MFA_REQUIRED = True
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = True
LOGGING = {"version": 1, "disable_existing_loggers": False}
# Every receipt rings the doorbell in tests (no per-process throttle), and
# a burst is over at once: each receipt is e-mailed after its commit, as the
# tests of the outbox expect. The tests of bursts set their own window.
REFRAIN_RECEIPT_DOORBELL_SECONDS = 0.0
REFRAIN_RECEIPT_BURST_MINUTES = 0.0
# The demo receiver (off unless a test turns it on) keeps its file here.
REFRAIN_DEMO_RECEIVER_DIR = str(TEST_TMP_DIR / "demo-receiver")
REFRAIN_EXPORT_DIR = str(TEST_TMP_DIR / "exports")
REFRAIN_TAGGED_AUDIO_DIR = str(TEST_TMP_DIR / "tagged-audio")
