"""Liveness and readiness probes for load balancers and orchestrators."""

from pathlib import Path

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the process is up; touches nothing else."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return f"{type(exc).__name__}: {exc}"
    return None


def _check_broker() -> str | None:
    url = settings.CELERY_BROKER_URL
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    try:
        if url.startswith("filesystem://"):
            # The filesystem transport "connects" to anything; what matters is
            # that the queue folder is there and writable.
            folder = Path(options["data_folder_out"])
            probe = folder / ".readyz"
            probe.write_text("ok")
            probe.unlink()
        else:
            with Connection(url, connect_timeout=2, transport_options=options) as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    return None


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer; 503 naming what failed."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    failed = {name: error for name, error in checks.items() if error}
    body = {
        "status": "unavailable" if failed else "ok",
        "checks": {
            name: ("failed" if error else "ok") for name, error in checks.items()
        },
    }
    if failed:
        body["errors"] = failed
    return JsonResponse(body, status=503 if failed else 200)
