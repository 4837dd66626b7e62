import io

import pytest
from django.core.exceptions import ValidationError

from catalog.audio import MAX_DURATION_SECONDS, AudioInfo, inspect_audio
from tests.catalog.helpers import (
    MP3_FRAME_SECONDS,
    flac_bytes,
    mp3_bytes,
    wav_bytes,
    wav_declaring,
)

LIMIT = 10**9


def _inspect(name: str, content: bytes) -> AudioInfo:
    return inspect_audio(
        io.BytesIO(content), name=name, size=len(content), max_bytes=LIMIT
    )


def _refusal(name: str, content: bytes) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _inspect(name, content)
    return caught.value


@pytest.mark.parametrize(
    ("name", "content", "duration_ms", "mime_type"),
    [
        ("one_second.wav", wav_bytes(seconds=1.0), 1000, "audio/wav"),
        ("cbr.mp3", mp3_bytes(declared_frames=38, frames=38), 993, "audio/mpeg"),
        # a FLAC of silence can be almost nothing: no floor on its size
        ("quiet.flac", flac_bytes(seconds=3), 3000, "audio/flac"),
        # the last second of slack: a header that rounds up is not refused
        ("short.mp3", mp3_bytes(declared_frames=20, frames=1), 522, "audio/mpeg"),
    ],
    ids=["wav", "mp3", "flac-silence", "mp3-within-slack"],
)
def test_a_duration_the_file_can_hold_is_read(name, content, duration_ms, mime_type):
    info = _inspect(name, content)

    assert info.duration_ms == duration_ms
    assert info.mime_type == mime_type


def test_an_mp3_whose_xing_header_counts_0xffffffff_frames_is_refused():
    # given one 417-byte frame whose Xing header claims 4,294,967,295 frames
    # (31,165 hours, more milliseconds than the database's integer holds)
    content = mp3_bytes(declared_frames=0xFFFFFFFF)

    error = _refusal("endless.mp3", content)

    assert error.code == "bad_duration"
    assert error.messages == [
        "“endless.mp3” says it lasts 31,165 hours but holds only 417 bytes of "
        "audio; the file is damaged or its header is wrong."
    ]


def test_an_mp3_longer_than_its_bytes_at_8_kbit_s_is_refused():
    # given three frames (1,251 bytes: 1.25 s at 8 kbit/s) claiming 5,000
    # frames (130.6 s)
    content = mp3_bytes(declared_frames=5000, frames=3)
    assert len(content) * 8 / 8000 + 1 < 5000 * MP3_FRAME_SECONDS

    error = _refusal("stretched.mp3", content)

    assert error.messages == [
        "“stretched.mp3” says it lasts 2 minutes but holds only 1.3 kB of "
        "audio; the file is damaged or its header is wrong."
    ]


@pytest.mark.parametrize(
    ("rate", "hours"),
    [(8000, "149"), (1, "1,193,046")],
    ids=["149-hours-at-8000-bytes-a-second", "past-the-database-integer"],
)
def test_a_wav_whose_data_chunk_declares_0xfffffff0_bytes_is_refused(rate, hours):
    # given a 60-byte WAV (16 bytes of samples) whose data chunk says
    # 0xFFFFFFF0 bytes: 149 hours at its own 8,000 bytes a second
    content = wav_declaring(data_size=0xFFFFFFF0, data=bytes(16), rate=rate)
    assert len(content) == 60

    error = _refusal("long.wav", content)

    assert error.code == "bad_duration"
    assert error.messages == [
        f"“long.wav” says it lasts {hours} hours but holds only 60 bytes of "
        "audio; the file is damaged or its header is wrong."
    ]


def test_a_wav_is_held_to_its_own_byte_rate():
    # given 16 bytes of samples declared as 30 s of 16 kHz 8-bit mono
    # (480,000 bytes), which is far below 8 kbit/s but not a plausible WAV
    content = wav_declaring(data_size=16000 * 30, rate=16000)

    error = _refusal("thin.wav", content)

    assert (
        "“thin.wav” says it lasts 30 seconds but holds only 60 bytes"
        in (error.messages[0])
    )


def test_a_track_longer_than_24_hours_is_refused_whatever_its_format():
    # given a FLAC whose STREAMINFO counts 25 hours of samples (FLAC has no
    # floor on its bitrate, so only the maximum applies)
    content = flac_bytes(seconds=25 * 3600)

    error = _refusal("marathon.flac", content)

    assert MAX_DURATION_SECONDS == 24 * 3600
    assert error.code == "bad_duration"
    assert error.messages == [
        "“marathon.flac” says it lasts 25 hours; the longest track we accept "
        "lasts 24 hours."
    ]
