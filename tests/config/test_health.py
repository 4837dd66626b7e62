import logging
import socket
import time

import pytest
from django.db import connection

from config.settings.base import cache_from_url

REFUSED = "127.0.0.1:1"  # nothing listens on port 1
REFUSED_BROKER = f"redis://{REFUSED}/0"
REFUSED_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://{REFUSED}/0",
    }
}
ALL_OK = {"database": "ok", "broker": "ok", "cache": "ok"}


@pytest.fixture
def silent_port():
    """A local port whose server takes connections and never says a word.

    The kernel completes the handshake for connections waiting in the listen
    queue, so a client connects and then waits for an answer that never comes:
    a hung database, as a client sees it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


def _assert_tells_nothing_about(response, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in response.text


def test_healthz_is_ok_and_touches_nothing(client):
    # no ``db`` fixture: pytest-django fails the test if the probe queries
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_is_ok_when_database_broker_and_cache_answer(client, db, caplog):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": ALL_OK}
    assert "no-cache" in response["Cache-Control"]
    # nothing failed, so nothing was logged
    assert [r for r in caplog.records if r.name == "config.health"] == []


def test_readyz_leaves_nothing_in_the_cache(client, db, settings):
    # given an empty local-memory cache
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    from django.core.cache import cache

    # when the probe runs
    response = client.get("/readyz")

    # then the round trip worked and its key is gone
    assert response.json()["checks"]["cache"] == "ok"
    assert list(cache._cache) == []


def test_readyz_is_503_when_the_broker_is_unreachable(client, db, settings, caplog):
    # given a broker URL that points at nothing
    settings.CELERY_BROKER_URL = REFUSED_BROKER
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}

    # when the probe runs
    with caplog.at_level(logging.WARNING, logger="config.health"):
        response = client.get("/readyz")

    # then it is not ready and says only that the broker failed
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "failed", "cache": "ok"},
    }
    _assert_tells_nothing_about(response, REFUSED, "refused", "Error")
    # and the reason is in the log, for the operator
    assert "Readiness check 'broker' failed" in caplog.text
    assert "Connection refused" in caplog.text


def test_readyz_is_503_when_the_cache_is_unreachable(client, db, settings, caplog):
    # given a cache that points at a closed port: every sign-in would fail,
    # since allauth keeps its rate limits there
    settings.CACHES = REFUSED_CACHE

    # when the probe runs
    with caplog.at_level(logging.WARNING, logger="config.health"):
        response = client.get("/readyz")

    # then it is not ready, and says the cache (not the database) failed
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "ok", "cache": "failed"},
    }
    _assert_tells_nothing_about(response, REFUSED, "refused", "Error")
    assert "Readiness check 'cache' failed: ConnectionError" in caplog.text


def test_readyz_gives_up_on_a_hung_cache_within_seconds(
    client, db, settings, silent_port, caplog
):
    # given a Redis cache, configured as production configures it, on a
    # server that accepts connections and never answers
    settings.CACHES = {"default": cache_from_url(f"redis://127.0.0.1:{silent_port}/0")}

    # when the probe runs
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="config.health"):
        response = client.get("/readyz")
    elapsed = time.monotonic() - started

    # then it answers 503 after the cache's socket timeout, not never
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok",
        "broker": "ok",
        "cache": "failed",
    }
    assert 1.5 < elapsed < 4, elapsed
    assert "Readiness check 'cache' failed: TimeoutError" in caplog.text


def test_readyz_is_503_when_the_database_cannot_be_opened(
    client, db, monkeypatch, tmp_path, caplog
):
    # given a database the probe cannot open (a server that refuses, or an
    # SQLite file in a folder that does not exist); the test's own connection
    # stays open, only the probe's new one uses the broken settings
    if connection.vendor == "postgresql":
        monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
        monkeypatch.setitem(connection.settings_dict, "PORT", "1")
        secret = REFUSED
    else:
        secret = str(tmp_path / "missing")
        monkeypatch.setitem(connection.settings_dict, "NAME", f"{secret}/db.sqlite3")

    # when the probe runs
    with caplog.at_level(logging.WARNING, logger="config.health"):
        response = client.get("/readyz")

    # then it is not ready, says which check failed and nothing more
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "failed", "broker": "ok", "cache": "ok"},
    }
    _assert_tells_nothing_about(response, secret, "OperationalError")
    assert "Readiness check 'database' failed: OperationalError" in caplog.text


@pytest.mark.postgres  # a hung server needs a network database
def test_readyz_gives_up_on_a_hung_database_within_seconds(
    client, db, monkeypatch, silent_port, caplog
):
    # given a database server that accepts connections and never answers
    monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
    monkeypatch.setitem(connection.settings_dict, "PORT", str(silent_port))

    # when the probe runs
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="config.health"):
        response = client.get("/readyz")
    elapsed = time.monotonic() - started

    # then it answers 503 within the connect timeout, not a 500 much later
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "failed", "broker": "ok", "cache": "ok"},
    }
    assert connection.settings_dict["OPTIONS"]["connect_timeout"] == 3
    assert 2.5 < elapsed < 5, elapsed
    assert "connection timeout expired" in caplog.text
    _assert_tells_nothing_about(response, str(silent_port))


def test_readyz_is_ok_with_a_filesystem_broker_folder(client, db, settings, tmp_path):
    # given the embedded broker with its queue folder in place
    queue = tmp_path / "queue"
    queue.mkdir()
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(queue),
        "data_folder_out": str(queue),
    }

    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == ALL_OK
    # the write probe cleans up after itself
    assert list(queue.iterdir()) == []


def test_readyz_is_503_when_the_filesystem_queue_folder_is_missing(
    client, db, settings, tmp_path, caplog
):
    # given the embedded broker pointing at a queue folder that does not exist
    missing = tmp_path / "no-such-queue"
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(missing),
        "data_folder_out": str(missing),
    }

    # when the probe runs
    with caplog.at_level(logging.WARNING, logger="config.health"):
        response = client.get("/readyz")

    # then it is not ready, the folder is named only in the log, and the
    # probe did not create the folder
    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {"database": "ok", "broker": "failed", "cache": "ok"}
    _assert_tells_nothing_about(response, str(tmp_path))
    assert "Readiness check 'broker' failed: FileNotFoundError" in caplog.text
    assert not missing.exists()


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_probes_refuse_writes(client, db, path, method):
    response = getattr(client, method)(path)

    assert response.status_code == 405
    assert response["Allow"] == "GET"
