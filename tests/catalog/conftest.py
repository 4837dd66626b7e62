import uuid
from pathlib import Path

import pytest
from django.test import Client


@pytest.fixture(autouse=True)
def _own_cache_space(settings):
    """Give each test its own cache key space.

    Search totals are cached per artist id and catalogue version, and a
    test's writes never commit, so nothing retires those entries. On SQLite a
    rolled-back AUTOINCREMENT hands the next test the same ids, which would
    then read the previous test's totals. The prefix stays under the worker's
    own, so the session's clean-up of that prefix still removes the keys.
    """
    cache = dict(settings.CACHES["default"])
    prefix = cache.get("KEY_PREFIX") or "refrain-test"
    cache["KEY_PREFIX"] = f"{prefix}:{uuid.uuid4().hex}"
    settings.CACHES = {**settings.CACHES, "default": cache}


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    """A fresh, empty MEDIA_ROOT for this test, so file listings are exact."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


@pytest.fixture
def client(client_ip):
    """A test client with its own address: allauth's per-address rate limits
    live in the shared cache, and the invitation flow goes through allauth."""
    return Client(REMOTE_ADDR=client_ip)


class InvitationQueue:
    """Stands in for the broker: records what would have been enqueued."""

    def __init__(self):
        self.sent: list[tuple] = []

    def delay(self, *args):
        self.sent.append(args)


@pytest.fixture
def invitation_queue(monkeypatch) -> InvitationQueue:
    queue = InvitationQueue()
    monkeypatch.setattr("catalog.services.send_invitations_task", queue)
    return queue
