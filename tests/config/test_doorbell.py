"""Every task the app enqueues goes through ``config.doorbell``, which logs a
broker that refuses instead of failing the request that committed."""

import re
from pathlib import Path

from django.conf import settings

APPS = ("accounts", "catalog", "consent", "config")
PUBLISH = re.compile(r"\.(delay|apply_async|send_task)\(")


def test_only_the_doorbell_publishes_tasks():
    base = Path(settings.BASE_DIR)
    publishers = sorted(
        str(path.relative_to(base))
        for app in APPS
        for path in (base / app).rglob("*.py")
        if "migrations" not in path.parts and PUBLISH.search(path.read_text())
    )

    assert publishers == ["config/doorbell.py"]
