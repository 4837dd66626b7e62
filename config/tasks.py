"""Operational tasks that belong to no app."""

import json
import re

from celery import shared_task
from django.contrib.auth import get_user_model

from config.env import VAR_DIR, ensure_var_dirs


@shared_task(name="refrain.ping")
def ping(token: str) -> None:
    """Prove that a worker is alive and reaches the database.

    Idempotent: writes ``var/pings/<token>.json`` with the number of accounts
    the worker sees. Used by the embedded-stack test and after a deploy.
    """
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", token):
        raise ValueError("ping token must be 1-64 URL-safe characters")
    ensure_var_dirs("pings")
    payload = {"token": token, "users": get_user_model().objects.count()}
    (VAR_DIR / "pings" / f"{token}.json").write_text(json.dumps(payload))
