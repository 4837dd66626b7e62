"""Liveness and readiness probes for load balancers and orchestrators.

``/readyz`` answers anyone, so it says only which dependency failed, never
how: an error names hosts, ports and paths. The details go to the log.
"""

import logging
import uuid
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection

logger = logging.getLogger(__name__)

# A database that accepts the connection but is stuck (behind a lock, out of
# workers) answers nothing; PostgreSQL gives up on the probe's query after 2 s.
STATEMENT_TIMEOUT_SQL = "SET statement_timeout = '2s'"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the process is up; touches nothing else."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    """Connect afresh and run one query.

    A connection of its own, not the request's: a persistent connection to a
    server that stopped answering would block the probe for as long as the
    socket lives, while a new one gives up after the ``connect_timeout`` that
    ``database_from_url`` sets (a few seconds).
    """
    probe = connection.copy()
    try:
        with probe.cursor() as cursor:
            if probe.vendor == "postgresql":
                cursor.execute(STATEMENT_TIMEOUT_SQL)
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        probe.close()


def _check_broker() -> None:
    url = settings.CELERY_BROKER_URL
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    if url.startswith("filesystem://"):
        # The filesystem transport "connects" to anything; what matters is
        # that the queue folder is there and writable.
        folder = Path(options["data_folder_out"])
        probe = folder / ".readyz"
        probe.write_text("ok")
        probe.unlink()
        return
    with Connection(url, connect_timeout=2, transport_options=options) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def _check_cache() -> None:
    """Store, read back and delete one value.

    Sign-in depends on the cache (allauth's rate limits and used TOTP codes
    live there), so a cache that cannot keep a value means nobody can sign in.
    The key is new on every call: two probes at once do not see each other.
    """
    key = f"readyz:{uuid.uuid4().hex}"
    value = uuid.uuid4().hex
    cache.set(key, value, timeout=30)
    try:
        if cache.get(key) != value:
            raise RuntimeError("the cache did not return the value just stored")
    finally:
        cache.delete(key)


CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "broker": _check_broker,
    "cache": _check_cache,
}


def _run(name: str, check: Callable[[], None]) -> bool:
    try:
        check()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        logger.warning(
            "Readiness check %r failed: %s: %s", name, type(exc).__name__, exc
        )
        return False
    return True


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when the database, the broker and the cache answer; 503 naming
    which failed (the reasons are logged, not shown)."""
    results = {name: _run(name, check) for name, check in CHECKS.items()}
    ready = all(results.values())
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": {name: "ok" if ok else "failed" for name, ok in results.items()},
    }
    return JsonResponse(body, status=200 if ready else 503)
