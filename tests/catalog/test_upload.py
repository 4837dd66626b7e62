import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from mutagen.id3 import TIT2
from mutagen.wave import WAVE

from catalog.audio import AudioInfo
from catalog.models import ArtistCatalogStats, Track
from catalog.services import tracks_upload
from tests.catalog.helpers import (
    flac_bytes,
    kept_counts,
    media_files,
    mp3_bytes,
    wav_bytes,
    wav_declaring,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

UPLOAD = "/tracks/upload/"
NOTHING_UPLOADED = "<strong>Nothing was uploaded.</strong>"


def _file(name: str, content: bytes, content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def _wav_with_title(title: str) -> bytes:
    buffer = io.BytesIO(wav_bytes())
    audio = WAVE(buffer)
    audio.add_tags()
    audio.tags.add(TIT2(encoding=3, text=[title]))
    audio.save(buffer)
    return buffer.getvalue()


def _stored_bytes(media_root, track: Track) -> bytes:
    return (media_root / track.audio_file.name).read_bytes()


def test_upload_page_needs_nothing_but_a_signed_in_artist(client, user):
    client.force_login(user)

    response = client.get(UPLOAD)

    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in response.text
    assert 'name="files"' in response.text and "multiple" in response.text


def test_a_real_wav_is_stored_under_a_random_name(client, user, media_root):
    # given a small WAV without tags
    content = wav_bytes(seconds=1.0)
    client.force_login(user)

    # when the artist uploads it
    response = client.post(
        UPLOAD, {"files": _file("night_drive.wav", content, "audio/wav")}
    )

    # then one independent track exists, titled from the file name
    track = Track.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/tracks/{track.public_id}/"
    assert (track.artist, track.title, track.duration_ms) == (user, "night drive", 1000)
    assert (track.license_class, track.label, track.isrc) == ("independent", None, None)
    assert track.audio_mime_type == "audio/wav"
    # and the file is in MEDIA_ROOT under a random name, not the uploaded one
    assert re.fullmatch(r"audio/[0-9a-f]{32}\.wav", track.audio_file.name)
    assert media_files(media_root) == [track.audio_file.name]
    assert _stored_bytes(media_root, track) == content
    # and the track is counted for the list's total
    assert kept_counts() == {(user.pk, "independent"): 1}
    # and the artist is told, on the track's page
    page = client.get(response["Location"])
    assert (
        "Uploaded 1 track. Nothing you upload is used for AI unless you say yes."
        in page.text
    )
    assert "<h1>night drive</h1>" in page.text
    assert "0:01" in page.text


def test_a_wav_title_tag_wins_over_the_file_name(client, user, media_root):
    client.force_login(user)

    client.post(
        UPLOAD, {"files": _file("take_3.wav", _wav_with_title("Harbour Lights"))}
    )

    assert Track.objects.get().title == "Harbour Lights"


def test_a_real_flac_is_accepted_with_its_title_and_duration(client, user, media_root):
    # given a FLAC file whose tags carry a title
    content = flac_bytes(title="Midnight Tide", seconds=2)
    client.force_login(user)

    # when it is uploaded under an unrelated name
    response = client.post(UPLOAD, {"files": _file("01-track.flac", content)})

    # then the title and duration come from the file
    track = Track.objects.get()
    assert response.status_code == 302
    assert (track.title, track.duration_ms) == ("Midnight Tide", 2000)
    assert track.audio_mime_type == "audio/flac"
    assert re.fullmatch(r"audio/[0-9a-f]{32}\.flac", track.audio_file.name)
    assert media_files(media_root) == [track.audio_file.name]
    assert _stored_bytes(media_root, track) == content


def test_a_flac_without_tags_is_titled_from_its_file_name(client, user, media_root):
    client.force_login(user)

    client.post(UPLOAD, {"files": _file("Summer_Rain.flac", flac_bytes(seconds=3))})

    track = Track.objects.get()
    assert (track.title, track.duration_ms) == ("Summer Rain", 3000)


def test_the_type_comes_from_the_content_not_the_name(client, user, media_root):
    # given a real WAV with a misleading name
    client.force_login(user)

    client.post(UPLOAD, {"files": _file("notes.txt", wav_bytes(), "text/plain")})

    # then it is stored as the WAV it is
    track = Track.objects.get()
    assert track.audio_mime_type == "audio/wav"
    assert track.audio_file.name.endswith(".wav")
    assert track.title == "notes"


def test_several_files_at_once(client, user, media_root):
    client.force_login(user)

    response = client.post(
        UPLOAD,
        {
            "files": [
                _file("one.wav", wav_bytes()),
                _file("two.flac", flac_bytes(title="Two")),
            ]
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/tracks/"
    assert sorted(Track.objects.values_list("title", flat=True)) == ["Two", "one"]
    assert len(media_files(media_root)) == 2
    assert kept_counts() == {(user.pk, "independent"): 2}
    page = client.get("/tracks/")
    assert (
        "Uploaded 2 tracks. Nothing you upload is used for AI unless you say yes."
        in page.text
    )


def test_the_owner_downloads_the_original_as_an_attachment(client, user, media_root):
    content = wav_bytes()
    client.force_login(user)
    client.post(UPLOAD, {"files": _file("night_drive.wav", content)})
    track = Track.objects.get()

    response = client.get(f"/tracks/{track.public_id}/audio")

    assert response.status_code == 200
    # (reading the stream to its end closes the file)
    assert b"".join(response.streaming_content) == content
    assert response["Content-Disposition"] == 'attachment; filename="night-drive.wav"'
    assert response["Content-Type"] == "audio/wav"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    detail = client.get(f"/tracks/{track.public_id}/")
    assert f'href="/tracks/{track.public_id}/audio"' in detail.text


def test_nobody_else_can_download_the_file(client, user, media_root):
    client.force_login(user)
    client.post(UPLOAD, {"files": _file("night_drive.wav", wav_bytes())})
    track = Track.objects.get()
    path = f"/tracks/{track.public_id}/audio"

    client.force_login(UserFactory())
    assert client.get(path).status_code == 404
    client.logout()
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


@pytest.fixture
def earlier_upload(client, user, media_root) -> list[str]:
    """An artist who already uploaded one file: the listing a refusal must keep."""
    client.force_login(user)
    client.post(UPLOAD, {"files": _file("earlier.wav", wav_bytes())})
    listing = media_files(media_root)
    assert len(listing) == 1
    return listing


def _assert_nothing_new_stored(user, media_root, listing):
    assert list(Track.objects.values_list("title", flat=True)) == ["earlier"]
    assert media_files(media_root) == listing
    assert kept_counts() == {(user.pk, "independent"): 1}


NOT_ACCEPTED = "is not an audio file we accept (MP3, WAV, FLAC, Ogg or M4A)."


@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "song.mp3",
            b"These are the lyrics, not the song.\n" * 40,
            f"“song.mp3” {NOT_ACCEPTED}",
        ),
        ("empty.wav", b"", "“empty.wav” is empty."),
        ("fake.flac", b"fLaC" + b"\x00" * 200, f"“fake.flac” {NOT_ACCEPTED}"),
        ("cut.wav", wav_bytes()[:30], f"“cut.wav” {NOT_ACCEPTED}"),
    ],
    ids=["text-named-mp3", "empty", "flac-marker-only", "truncated-wav"],
)
def test_a_file_that_is_not_audio_is_refused_and_nothing_stored(
    client, user, media_root, earlier_upload, name, content, message
):
    response = client.post(UPLOAD, {"files": _file(name, content)})

    assert response.status_code == 400
    assert NOTHING_UPLOADED in response.text
    assert f"<li>{message}</li>" in response.text
    _assert_nothing_new_stored(user, media_root, earlier_upload)


@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "endless.mp3",
            mp3_bytes(declared_frames=0xFFFFFFFF),
            "“endless.mp3” says it lasts 31,165 hours but holds only 417 bytes "
            "of audio; the file is damaged or its header is wrong.",
        ),
        (
            "long.wav",
            wav_declaring(data_size=0xFFFFFFF0, rate=1),
            "“long.wav” says it lasts 1,193,046 hours but holds only 60 bytes "
            "of audio; the file is damaged or its header is wrong.",
        ),
        (
            "149_hours.wav",
            wav_declaring(data_size=0xFFFFFFF0, rate=8000),
            "“149_hours.wav” says it lasts 149 hours but holds only 60 bytes "
            "of audio; the file is damaged or its header is wrong.",
        ),
        (
            "marathon.flac",
            flac_bytes(seconds=25 * 3600),
            "“marathon.flac” says it lasts 25 hours; the longest track we "
            "accept lasts 24 hours.",
        ),
    ],
    ids=["mp3-xing-0xffffffff", "wav-past-int32-ms", "wav-149-hours", "flac-25h"],
)
def test_a_file_whose_header_declares_an_impossible_length_is_refused(
    client, user, media_root, earlier_upload, name, content, message
):
    # given a file whose header claims more audio than it holds (before, the
    # first two were a 500 from the model's validation and the third a track)
    # when the artist uploads it
    response = client.post(UPLOAD, {"files": _file(name, content)})

    # then the form says why, and nothing is stored
    assert response.status_code == 400
    assert NOTHING_UPLOADED in response.text
    assert f"<li>{message}</li>" in response.text
    _assert_nothing_new_stored(user, media_root, earlier_upload)


def test_an_oversize_file_is_refused_and_nothing_stored(
    client, user, media_root, earlier_upload, settings
):
    # given a size cap smaller than a one-second WAV (16,044 bytes)
    settings.REFRAIN_UPLOAD_MAX_BYTES = 10_000

    response = client.post(UPLOAD, {"files": _file("long_take.wav", wav_bytes())})

    assert response.status_code == 400
    assert NOTHING_UPLOADED in response.text
    assert "<li>“long_take.wav” is too large: 16 kB; the limit is 10 kB.</li>" in (
        response.text
    )
    _assert_nothing_new_stored(user, media_root, earlier_upload)


def test_a_batch_with_one_bad_file_stores_nothing(
    client, user, media_root, earlier_upload
):
    response = client.post(
        UPLOAD,
        {
            "files": [
                _file("good.wav", wav_bytes()),
                _file("song.mp3", b"not audio at all " * 20),
                _file("fine.flac", flac_bytes(title="Fine")),
            ]
        },
    )

    assert response.status_code == 400
    assert NOTHING_UPLOADED in response.text
    assert f"<li>“song.mp3” {NOT_ACCEPTED}</li>" in response.text
    assert "good.wav" not in response.text
    _assert_nothing_new_stored(user, media_root, earlier_upload)


def test_posting_no_file_asks_for_one(client, user, media_root):
    client.force_login(user)

    response = client.post(UPLOAD, {})

    assert response.status_code == 400
    assert "<li>Choose at least one audio file.</li>" in response.text
    assert Track.objects.count() == 0
    assert media_files(media_root) == []


def test_a_database_failure_mid_batch_removes_every_file_written(
    user, media_root, monkeypatch
):
    # given a batch of two checked files, and a database that fails on the
    # second track (after its file and the first one are on disk)
    uploads = [
        (
            _file("one.wav", wav_bytes()),
            AudioInfo(
                title="One", duration_ms=1000, mime_type="audio/wav", extension="wav"
            ),
        ),
        (
            _file("two.wav", wav_bytes()),
            AudioInfo(
                title="Two", duration_ms=1000, mime_type="audio/wav", extension="wav"
            ),
        ),
    ]
    calls = []

    def failing_stats_apply(*, deltas):
        calls.append(deltas)
        if len(calls) == 2:
            raise RuntimeError("database went away")

    monkeypatch.setattr("catalog.services.stats_apply", failing_stats_apply)

    # when the batch is stored
    with pytest.raises(RuntimeError):
        tracks_upload(artist=user, uploads=uploads)

    # then neither rows nor files remain
    assert len(calls) == 2
    assert Track.objects.count() == 0
    assert ArtistCatalogStats.objects.count() == 0
    assert media_files(media_root) == []
