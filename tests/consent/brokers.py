"""A broker of one test's own for this process's Celery app: one that refuses
every connection, or a private queue on the test broker (Redis under a key
prefix of its own, or filesystem folders in the test's tmp_path) that no
other test's messages reach.

Celery keeps a connection pool and a producer pool per broker (kombu's global
pools, keyed by URL and transport options): dropping the app's references to
them makes the next publish take the pools of the broker set now. The pools
themselves are left open, since others may share them.
"""

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from config.celery_app import app as celery_app

QUEUE = "celery"  # Celery's default queue: every task here goes to it


def _forget_pools() -> None:
    celery_app._pool = None
    amqp = celery_app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@contextmanager
def celery_broker(url: str, transport_options: dict) -> Iterator[None]:
    """Publish to ``url`` (with these transport options) inside the block."""
    conf = celery_app.conf
    saved = conf.broker_url, conf.broker_transport_options
    conf.broker_url, conf.broker_transport_options = url, transport_options
    _forget_pools()
    try:
        yield
    finally:
        conf.broker_url, conf.broker_transport_options = saved
        _forget_pools()


def closed_port() -> int:
    """A local port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def broker_refusing() -> Iterator[str]:
    """Every publish inside the block meets a broker that refuses to connect."""
    url = f"redis://127.0.0.1:{closed_port()}/0"
    with celery_broker(url, {}):
        yield url


@contextmanager
def private_broker(tmp_path: Path) -> Iterator[tuple[str, dict]]:
    """A queue of this test's own on the test broker; removed afterwards.

    Yields the URL and transport options, for a worker to be given too.
    """
    if settings.REDIS_AVAILABLE:
        prefix = f"refrain-test-private-{uuid.uuid4().hex}-"
        url = settings.TEST_REDIS_URL
        options = {"visibility_timeout": 3600, "global_keyprefix": prefix}
    else:
        folders = {
            name: tmp_path / "broker" / name
            for name in ("queue", "processed", "control")
        }
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        url = "filesystem://localhost/"
        options = {
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "processed_folder": str(folders["processed"]),
            "control_folder": str(folders["control"]),
            "store_processed": False,
        }
    try:
        with celery_broker(url, options):
            yield url, options
    finally:
        if settings.REDIS_AVAILABLE:
            import redis

            client = redis.Redis.from_url(url)
            for key in client.scan_iter(match=f"{prefix}*", count=1000):
                client.delete(key)
            client.close()


def drain(*, limit: int = 100) -> list[tuple[str, list]]:
    """Be a worker for a moment: run every message waiting on the current
    broker's default queue in this process (and what those publish), until
    it is empty. Returns ``(task name, args)`` in the order they ran."""
    ran: list[tuple[str, list]] = []
    with celery_app.connection_for_read() as connection:
        queue = connection.SimpleQueue(QUEUE)
        try:
            while len(ran) < limit:
                try:
                    message = queue.get(block=True, timeout=0.5)
                except queue.Empty:
                    break
                args, kwargs, _ = message.decode()
                message.ack()
                name = message.headers["task"]
                ran.append((name, args))
                celery_app.tasks[name](*args, **kwargs)
        finally:
            queue.close()
    return ran
