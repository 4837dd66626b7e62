"""The track page's tools (issue 15): play the track (byte ranges, so a
player can seek), correct its title and ISRC, and download every answer as
CSV; each refusal says why and changes nothing."""

import csv
import io

import pytest

from catalog.models import Track
from consent.services import consent_set, tagged_copy_build
from tests.consent.audio_helpers import audio_track
from tests.consent.helpers import GENAI, MINING
from tests.dbstate import database_state
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_the_page_plays_the_track_with_byte_ranges(
    signed_in, artist, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    track = audio_track("mp3", artist=artist)
    original = track.audio_file.open("rb").read()
    url = f"/tracks/{track.public_id}/play"

    page = signed_in.get(track.get_absolute_url()).content.decode()
    assert f'<audio controls preload="metadata" src="{url}"' in page

    whole = signed_in.get(url)
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    assert _body(whole) == original
    assert whole["Content-Type"] == "audio/mpeg"
    part = signed_in.get(url, HTTP_RANGE="bytes=10-19")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 10-19/{len(original)}"
    assert _body(part) == original[10:20]
    tail = signed_in.get(url, HTTP_RANGE="bytes=-5")
    assert _body(tail) == original[-5:]
    open_ended = signed_in.get(url, HTTP_RANGE=f"bytes={len(original) - 3}-")
    assert _body(open_ended) == original[-3:]
    head = signed_in.head(url, HTTP_RANGE="bytes=0-1")
    assert head.status_code == 206 and head["Content-Length"] == "2"


@pytest.mark.parametrize(
    "header", ["bytes=999999999-", "bytes=5-2", "lines=0-1", "bytes=-", "bytes=1-2,4-5"]
)
def test_a_range_it_cannot_serve_is_refused(
    signed_in, artist, settings, tmp_path, header
):
    settings.MEDIA_ROOT = str(tmp_path)
    track = audio_track("mp3", artist=artist)
    response = signed_in.get(f"/tracks/{track.public_id}/play", HTTP_RANGE=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{track.audio_file.size}"


def test_another_artists_audio_is_a_404(signed_in, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    track = audio_track("mp3", artist=UserFactory())
    assert signed_in.get(f"/tracks/{track.public_id}/play").status_code == 404
    assert signed_in.get(f"/tracks/{track.public_id}/edit/").status_code == 404


def test_the_artist_corrects_title_and_isrc(signed_in, artist, make_track):
    track = make_track(artist=artist, title="Nite Drive", isrc=None)
    signed_in.get("/tracks/")  # a cached list page

    response = signed_in.post(
        f"/tracks/{track.public_id}/edit/",
        {"title": "  Night Drive ", "isrc": "us-rc1-76-07839"},
        follow=True,
    )

    track.refresh_from_db()
    assert (track.title, track.isrc) == ("Night Drive", "USRC17607839")
    assert "Saved." in response.content.decode()
    # the list shows the new title at once (its cache follows the change)
    assert "Night Drive</a>" in signed_in.get("/tracks/").content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"title": "", "isrc": ""}, "This field is required."),
        ({"title": "x" * 301, "isrc": ""}, "Ensure this value has at most 300"),
        ({"title": "Song", "isrc": "12345"}, "is not a valid ISRC"),
        ({"title": "Song", "isrc": "GB-AAA-24-00001"}, "Another track on the platform"),
    ],
)
def test_a_bad_edit_says_why_and_changes_nothing(
    signed_in, artist, make_track, data, message
):
    make_track(artist=UserFactory(), isrc="GBAAA2400001")
    track = make_track(artist=artist, title="Song", isrc="GBAAA2400002")
    before = database_state()

    response = signed_in.post(f"/tracks/{track.public_id}/edit/", data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert database_state() == before


def test_a_label_tracks_isrc_is_the_labels(signed_in, artist, make_track):
    track = make_track(artist=artist, signed=True, title="Signed")
    isrc = track.isrc

    page = signed_in.get(f"/tracks/{track.public_id}/edit/").content.decode()
    signed_in.post(
        f"/tracks/{track.public_id}/edit/",
        {"title": "Signed (2024 mix)", "isrc": "ZZ-ZZZ-99-99999"},
    )

    assert "Set by your label&#x27;s catalogue" in page
    track.refresh_from_db()
    assert (track.title, track.isrc) == ("Signed (2024 mix)", isrc)


def test_every_answer_downloads_as_csv(signed_in, artist, make_track):
    first = make_track(artist=artist, title="One, two")
    second = make_track(artist=artist, title="Label", signed=True)
    make_track(artist=UserFactory(), title="Not mine")
    consent_set(track=first, use=GENAI, state="granted", actor=artist, source="web")
    consent_set(track=first, use=MINING, state="denied", actor=artist, source="web")

    response = signed_in.get("/tracks/answers.csv")

    rows = list(csv.reader(io.StringIO(_body(response).decode())))
    assert rows[0][:6] == [
        "track",
        "title",
        "isrc",
        "license_class",
        "genai-training_answer",
        "genai-training_eligible",
    ]
    by_title = {row[1]: row for row in rows[1:]}
    assert set(by_title) == {"One, two", "Label"}
    assert by_title["One, two"][4:] == [
        "Yes",
        "yes",
        "My default: No",
        "no",
        "My default: No",
        "no",
        "No",
        "no",
    ]
    assert by_title["Label"][4:6] == ["Not allowed", "no"]
    assert Track.objects.get(pk=second.pk).license_class == "label"


def test_the_pending_download_asks_again_and_then_offers_the_link(
    signed_in, artist, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.REFRAIN_TAGGED_AUDIO_DIR = str(tmp_path / "tagged")
    track = audio_track("mp3", artist=artist)
    url = f"/tracks/{track.public_id}/download/"

    pending = signed_in.get(url)
    asked = signed_in.get(url, HTTP_HX_REQUEST="true")
    tagged_copy_build(track_id=track.pk)
    ready = signed_in.get(url, HTTP_HX_REQUEST="true")

    assert pending.status_code == 202
    assert 'http-equiv="refresh"' not in pending.content.decode()  # no reload
    assert 'hx-trigger="every 3s"' in asked.content.decode()
    assert asked.content.decode().startswith('<div id="download-state"')
    page = ready.content.decode()
    assert "Your download is ready" in page and "hx-trigger" not in page
    assert f'href="{url}" download' in page
