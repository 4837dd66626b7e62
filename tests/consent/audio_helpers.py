"""Tracks with real audio files for the tagged-copy and drift tests, and an
independent reading of each format's tags (mutagen's own API per format, not
``consent.signals.tags``)."""

import hashlib
import io
from pathlib import Path

import mutagen
from django.core.files.uploadedfile import SimpleUploadedFile
from mutagen.id3 import ID3
from mutagen.mp4 import MP4

from catalog.audio import inspect_audio
from consent.services import trackconsent_create_missing
from tests.catalog.helpers import (
    flac_bytes,
    m4a_bytes,
    mp3_bytes,
    ogg_opus_bytes,
    ogg_vorbis_bytes,
    wav_bytes,
)
from tests.factories import TrackFactory

AUDIO = {
    "mp3": lambda: mp3_bytes(declared_frames=40, frames=40),
    "wav": wav_bytes,
    "flac": lambda: flac_bytes(title="Night Drive"),
    "ogg": ogg_vorbis_bytes,
    "opus": ogg_opus_bytes,
    "m4a": m4a_bytes,
}


def audio_track(kind: str = "mp3", *, data: bytes | None = None, **kwargs):
    """A track with an audio file of ``kind`` (checked as an upload is), its
    four consent rows created as the upload service does."""
    data = AUDIO[kind]() if data is None else data
    info = inspect_audio(
        io.BytesIO(data), name=f"song.{kind}", size=len(data), max_bytes=10**8
    )
    track = TrackFactory(
        audio_file=SimpleUploadedFile(f"song.{info.extension}", data),
        audio_mime_type=info.mime_type,
        **kwargs,
    )
    trackconsent_create_missing(track_ids=[track.pk])
    track.refresh_from_db()
    return track


def digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_tags(path) -> dict[str, list[str]]:
    """Every custom tag of the file, as its format stores it: ID3 ``TXXX``
    frames by description, Vorbis comments by (lower-case) name, MP4
    freeform atoms by name."""
    audio = mutagen.File(path)
    if isinstance(audio.tags, ID3):
        found: dict[str, list[str]] = {}
        for frame in audio.tags.getall("TXXX"):
            found.setdefault(frame.desc, []).extend(frame.text)
        return found
    if isinstance(audio, MP4):
        prefix = "----:com.apple.iTunes:"
        return {
            key.removeprefix(prefix): [bytes(v).decode() for v in values]
            for key, values in audio.tags.items()
            if key.startswith(prefix)
        }
    # A VCommentDict is a list of (key, value) pairs: keys() gives each once.
    names = audio.tags.keys()  # noqa: SIM118
    return {key.lower(): list(audio.tags[key]) for key in names}
