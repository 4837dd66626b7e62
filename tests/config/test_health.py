import pytest

REFUSED_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def test_healthz_is_ok_and_touches_nothing(client):
    # no ``db`` fixture: pytest-django fails the test if the probe queries
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_is_ok_when_database_and_broker_answer(client, db):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok"},
    }
    assert "no-cache" in response["Cache-Control"]


def test_readyz_is_503_when_the_broker_is_unreachable(client, db, settings):
    # given a broker URL that points at nothing
    settings.CELERY_BROKER_URL = REFUSED_BROKER
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}

    # when the probe runs
    response = client.get("/readyz")

    # then it is not ready, and says the broker (not the database) failed
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"] == {"database": "ok", "broker": "failed"}
    assert list(body["errors"]) == ["broker"]
    assert "Connection refused" in body["errors"]["broker"]


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
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}
    # the write probe cleans up after itself
    assert list(queue.iterdir()) == []


def test_readyz_is_503_when_the_filesystem_queue_folder_is_missing(
    client, db, settings, tmp_path
):
    # given the embedded broker pointing at a queue folder that does not exist
    missing = tmp_path / "no-such-queue"
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(missing),
        "data_folder_out": str(missing),
    }

    # when the probe runs
    response = client.get("/readyz")

    # then it is not ready, and the probe did not create the folder
    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {"database": "ok", "broker": "failed"}
    assert body["errors"]["broker"].startswith("FileNotFoundError")
    assert not missing.exists()


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_probes_refuse_writes(client, db, path, method):
    response = getattr(client, method)(path)

    assert response.status_code == 405
    assert response["Allow"] == "GET"
