"""The answer inside the audio: tagged copies written by a worker with
mutagen (``consent.services.tagged_audio``, ``consent.signals.tags``), the
owner's download that serves them, and the fan-out that rings the worker."""

import mutagen
import pytest
from django.test import Client

import consent.tasks
from consent.propagation import propagation_fan_out
from consent.services import consent_set, tagged_copy_build
from consent.signals import tags
from consent.tasks import tag_audio
from tests.consent.audio_helpers import audio_track, digest, read_tags
from tests.consent.helpers import GENAI, INFERENCE
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SITE = "https://refrain.example"


@pytest.fixture(autouse=True)
def _own_folders(settings, tmp_path):
    """Originals and copies of this test's own, so listings are exact."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.REFRAIN_TAGGED_AUDIO_DIR = str(tmp_path / "tagged")
    settings.REFRAIN_SITE_URL = SITE


@pytest.fixture
def rung(monkeypatch) -> list[list[int]]:
    """Every ``consent.tag_audio`` message published, by its track ids."""
    published: list[list[int]] = []
    monkeypatch.setattr(
        consent.tasks.tag_audio, "delay", lambda ids: published.append(list(ids))
    )
    return published


def _set(track, use: str, state: str) -> None:
    consent_set(track=track, use=use, state=state, actor=None, source="web")


def _folder(track) -> list[str]:
    folder = tags.track_folder(track.pk)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("kind", ["mp3", "wav", "flac", "ogg", "opus", "m4a"])
def test_the_copy_carries_the_four_cawg_keys_and_the_version_the_original_is_unchanged(
    kind,
):
    # given a track of each format whose artist said yes to generative
    # training only
    track = audio_track(kind, title="Night Drive")
    _set(track, GENAI, "granted")
    track.refresh_from_db()
    original = track.audio_file.path
    before = digest(original)

    # when the worker's service builds its tagged copy
    copy = tagged_copy_build(track_id=track.pk)

    # then mutagen reads the answer back from the copy, in the format's own
    # tags, one value per key (beside what the original had: a FLAC's title)
    found = read_tags(copy)
    assert found.pop("title", None) == (["Night Drive"] if kind == "flac" else None)
    assert found == {
        "cawg.ai_generative_training": ["allowed"],
        "cawg.ai_training": ["notAllowed"],
        "cawg.ai_inference": ["notAllowed"],
        "cawg.data_mining": ["notAllowed"],
        "refrain.consent_version": [str(track.consent_version)],
        "refrain.track_url": [f"{SITE}/t/{track.public_id}/"],
    }
    # and it is still the same audio, while the original has not changed a byte
    assert type(mutagen.File(copy)) is type(mutagen.File(original))
    assert mutagen.File(copy).info.length == mutagen.File(original).info.length
    assert digest(original) == before
    assert (
        copy.name
        == f"v{track.consent_version}-"
        + tags.fingerprint(audio_name=track.audio_file.name)
        + f".{track.audio_file.name.rsplit('.', 1)[1]}"
    )


def test_the_original_tags_are_kept_and_our_keys_replaced_never_doubled():
    # given a FLAC with its own title that already says (wrongly) that AI
    # training is allowed: an earlier download, uploaded again
    track = audio_track("flac")
    first = tagged_copy_build(track_id=track.pk)
    assert read_tags(first)["cawg.ai_training"] == ["notAllowed"]
    stale = mutagen.File(track.audio_file.path)
    stale["cawg.ai_training"] = ["allowed"]
    stale.save()
    _set(track, INFERENCE, "granted")

    # when its copy is built
    copy = tagged_copy_build(track_id=track.pk)

    # then each key holds the stored answer once, and the title is kept
    found = read_tags(copy)
    assert found["title"] == ["Night Drive"]
    assert found["cawg.ai_training"] == ["notAllowed"]
    assert found["cawg.ai_inference"] == ["allowed"]
    # while the original still says what it said
    assert read_tags(track.audio_file.path)["cawg.ai_training"] == ["allowed"]


def test_an_mp3_with_id3v23_keeps_its_version_and_gets_one_frame_per_key():
    from mutagen.id3 import ID3, TIT2, TXXX

    # given an MP3 whose ID3v2.3 tag already has a cawg.ai_training frame
    track = audio_track("mp3")
    held = ID3()
    held.add(TIT2(encoding=3, text=["Old title"]))
    held.add(TXXX(encoding=3, desc="cawg.ai_training", text=["allowed"]))
    held.save(track.audio_file.path, v2_version=3)

    # when its copy is built
    copy = tagged_copy_build(track_id=track.pk)

    # then the tag is still ID3v2.3, with the title and one frame per key
    assert ID3(copy).version[:2] == (2, 3)
    assert [f.text for f in ID3(copy).getall("TXXX:cawg.ai_training")] == [
        ["notAllowed"]
    ]
    assert ID3(copy)["TIT2"].text == ["Old title"]


def test_a_new_version_gets_a_new_copy_and_the_old_one_is_removed():
    # given a track whose copy was built at its first version
    track = audio_track("ogg")
    _set(track, GENAI, "granted")
    old = tagged_copy_build(track_id=track.pk)

    # when the artist changes their answer and the worker builds again
    _set(track, GENAI, "denied")
    track.refresh_from_db()
    new = tagged_copy_build(track_id=track.pk)

    # then only the new version's copy is left, and it says no
    assert new != old
    assert _folder(track) == [new.name]
    assert read_tags(new)["cawg.ai_generative_training"] == ["notAllowed"]
    assert read_tags(new)["refrain.consent_version"] == [str(track.consent_version)]
    # and building again changes nothing (idempotent)
    assert tagged_copy_build(track_id=track.pk) == new
    assert _folder(track) == [new.name]


def test_a_build_for_an_older_version_never_replaces_a_newer_copy(monkeypatch):
    # given a track whose newest copy is built
    track = audio_track("wav")
    _set(track, GENAI, "granted")
    newest = tagged_copy_build(track_id=track.pk)
    # and a worker that had read the track before that change (version 0)
    track_v0 = tags.copy_path(
        track_id=track.pk, version=0, audio_name=track.audio_file.name
    )
    track_v0.write_bytes(b"built late by a slow worker")

    # when that worker tidies up after itself
    from consent.services import tagged_audio

    assert tagged_audio._prune(track.pk, keep=track_v0) is False

    # then its copy is gone and the newest one stays
    assert _folder(track) == [newest.name]


def test_a_file_mutagen_cannot_tag_leaves_a_marker_and_no_copy():
    # given a track whose stored file is no audio mutagen can write to
    track = audio_track("mp3")
    with open(track.audio_file.path, "wb") as damaged:
        damaged.write(b"not audio at all" * 8)

    # when the worker tries
    assert tagged_copy_build(track_id=track.pk) is None

    # then a marker says why, and the download says so rather than waiting
    assert _folder(track) == [
        tags.failed_path(
            track_id=track.pk, version=track.consent_version,
            audio_name=track.audio_file.name,
        ).name
    ]  # fmt: skip
    response = _signed_in(track.artist).get(f"/tracks/{track.public_id}/download/")
    assert response.status_code == 500
    assert "could not write" in response.text
    assert f'href="/tracks/{track.public_id}/audio"' in response.text


def test_the_owner_downloads_the_copy_of_the_current_version(rung):
    # given a track with audio whose copy is built
    track = audio_track("flac", title="Night Drive")
    copy = tagged_copy_build(track_id=track.pk)

    # when its artist downloads it
    response = _signed_in(track.artist).get(f"/tracks/{track.public_id}/download/")

    # then they get the tagged copy, as a private attachment
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == copy.read_bytes()
    assert response["Content-Type"] == "audio/flac"
    assert response["Content-Disposition"] == 'attachment; filename="night-drive.flac"'
    assert response["Cache-Control"] == "private, no-store"
    assert rung == []


def test_without_a_copy_the_download_says_it_is_being_prepared_and_writes_nothing(
    rung, django_capture_on_commit_callbacks, monkeypatch
):
    # given a track whose answer changed a moment ago (no copy yet), and a
    # mutagen that must not be called in a request
    track = audio_track("mp3")
    _set(track, GENAI, "granted")

    def no_tags_in_a_request(*args, **kwargs):
        raise AssertionError("tags written in the request")

    monkeypatch.setattr(tags, "tags_write", no_tags_in_a_request)

    # when its artist asks for the download
    with django_capture_on_commit_callbacks(execute=True):
        response = _signed_in(track.artist).get(f"/tracks/{track.public_id}/download/")

    # then the answer says so honestly, asks again shortly, rings the worker
    # and writes nothing
    assert response.status_code == 202
    assert response["Retry-After"] == "3"
    assert "being prepared" in response.text
    assert 'hx-trigger="every 3s"' in response.text  # asks again, no reload
    assert rung == [[track.pk]]
    assert _folder(track) == []


def test_another_artists_track_and_a_track_without_audio_are_404(make_track, rung):
    track = audio_track("wav")
    tagged_copy_build(track_id=track.pk)
    stranger = _signed_in(UserFactory())
    no_audio = make_track()

    assert stranger.get(f"/tracks/{track.public_id}/download/").status_code == 404
    owner = _signed_in(no_audio.artist)
    assert owner.get(f"/tracks/{no_audio.public_id}/download/").status_code == 404
    assert Client().get(f"/tracks/{track.public_id}/download/").status_code == 302
    assert rung == []


def test_the_track_page_links_the_download_only_when_there_is_audio(make_track):
    with_audio = audio_track("mp3")
    without = make_track()

    page = _signed_in(with_audio.artist).get(f"/tracks/{with_audio.public_id}/")
    bare = _signed_in(without.artist).get(f"/tracks/{without.public_id}/")

    assert f'href="/tracks/{with_audio.public_id}/download/"' in page.text
    assert "/download/" not in bare.text


def test_a_change_rings_the_worker_from_the_fan_out_never_from_the_request(
    rung, django_capture_on_commit_callbacks, monkeypatch, make_track
):
    # given two tracks of one artist, one with audio
    track = audio_track("opus")
    silent = make_track(artist=track.artist)
    written = []
    real_write = tags.tags_write
    monkeypatch.setattr(
        tags, "tags_write", lambda path, t: written.append(path) or real_write(path, t)
    )
    client = _signed_in(track.artist)
    with django_capture_on_commit_callbacks(execute=True):
        propagation_fan_out()  # the uploads' own changes
    rung.clear()

    # when the artist changes both in requests
    with django_capture_on_commit_callbacks(execute=True):
        for changed in (track, silent):
            response = client.post(
                f"/tracks/{changed.public_id}/consent/",
                {"use": GENAI, "state": "granted"},
            )
            assert response.status_code == 302

    # then the requests wrote no tags and rang no tagging
    assert written == [] and rung == [] and _folder(track) == []

    # when the fan-out takes the changes (in a worker)
    with django_capture_on_commit_callbacks(execute=True):
        assert propagation_fan_out() == 2

    # then it rang the tagging worker for the track with audio only
    assert rung == [[track.pk]]

    # and that task, run as a worker runs it, writes the copy
    tag_audio.apply(args=[rung[0]]).get()
    track.refresh_from_db()
    [copy] = tags.copies(track.pk)
    assert copy.version == track.consent_version
    assert read_tags(copy.path)["cawg.ai_generative_training"] == ["allowed"]
    assert len(written) == 1


def test_the_fan_out_rings_in_batches(rung, monkeypatch):
    from consent.propagation import outbox

    monkeypatch.setattr(outbox, "TAG_BATCH", 2)
    outbox.tagged_audio_ring([1, 2, 3, 4, 5])

    assert rung == [[1, 2], [3, 4], [5]]
