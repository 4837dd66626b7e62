"""The tagged copy on a real Celery worker: a change made in a request is
fanned out by the worker its doorbell rings, which rings the tagging, and
the download then serves the copy that says the new answer."""

import pytest
from django.test import Client

from consent.signals import tags
from tests.consent.audio_helpers import audio_track, digest, read_tags
from tests.consent.brokers import private_broker
from tests.consent.helpers import GENAI
from tests.drills import Workers, database_for_workers, wait_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_change_in_a_request_reaches_the_downloaded_files_tags_through_a_worker(
    tmp_path, settings
):
    # given a track with audio, and folders the worker shares
    folders = {
        "MEDIA_ROOT": str(tmp_path / "media"),
        "REFRAIN_TAGGED_AUDIO_DIR": str(tmp_path / "tagged"),
        "REFRAIN_SITE_URL": "https://refrain.example",
    }
    for name, value in folders.items():
        setattr(settings, name, value)
    settings.REFRAIN_PROPAGATION_DOORBELL_SECONDS = 0
    track = audio_track("flac")
    original = digest(track.audio_file.path)
    client = Client()
    client.force_login(track.artist)
    download = f"/tracks/{track.public_id}/download/"

    with private_broker(tmp_path) as broker:
        database, _ = database_for_workers(tmp_path)
        workers = Workers(tmp_path, database, broker, folders)
        try:
            workers.start_ready()
            # when the artist says yes to generative training
            response = client.post(
                f"/tracks/{track.public_id}/consent/",
                {"use": GENAI, "state": "granted"},
            )
            assert response.status_code == 302
            track.refresh_from_db()

            # then, without anything else asking, the worker writes the copy
            def copy_written():
                found = tags.copies(track.pk)
                return found and found[-1].version == track.consent_version

            wait_for(copy_written, "the tagged copy of the new version", workers)
            response = client.get(download)
        finally:
            workers.stop_all()

    # and the download is that copy, saying yes, the original untouched
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    [copy] = tags.copies(track.pk)
    assert body == copy.path.read_bytes()
    found = read_tags(copy.path)
    assert found["cawg.ai_generative_training"] == ["allowed"]
    assert found["refrain.consent_version"] == [str(track.consent_version)]
    assert digest(track.audio_file.path) == original
