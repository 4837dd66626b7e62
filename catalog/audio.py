"""Recognising audio by its content (mutagen), never by its file name."""

from dataclasses import dataclass
from pathlib import PurePath

import mutagen
from django.core.exceptions import ValidationError
from mutagen.flac import FLAC
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

# mutagen type -> (MIME type, extension stored on disk, name shown to artists)
ACCEPTED_TYPES: dict[type, tuple[str, str, str]] = {
    MP3: ("audio/mpeg", "mp3", "MP3"),
    WAVE: ("audio/wav", "wav", "WAV"),
    FLAC: ("audio/flac", "flac", "FLAC"),
    OggVorbis: ("audio/ogg", "ogg", "Ogg"),
    OggOpus: ("audio/ogg", "opus", "Ogg"),
    OggFLAC: ("audio/ogg", "oga", "Ogg"),
    MP4: ("audio/mp4", "m4a", "M4A"),
}
ACCEPTED_NAMES = "MP3, WAV, FLAC, Ogg or M4A"
TITLE_TAGS = ("title", "TIT2", "\xa9nam", "TITLE")


@dataclass(frozen=True)
class AudioInfo:
    title: str
    duration_ms: int | None
    mime_type: str
    extension: str


class _Nameless:
    """A read-only view of a file without its name, so mutagen cannot score
    the format by extension (a text file called ``song.mp3`` must fail)."""

    def __init__(self, fileobj):
        self._f = fileobj

    def read(self, *args):
        return self._f.read(*args)

    def seek(self, *args):
        return self._f.seek(*args)

    def tell(self):
        return self._f.tell()


def _tag_title(audio) -> str:
    tags = getattr(audio, "tags", None)
    if not tags:
        return ""
    for key in TITLE_TAGS:
        try:
            value = tags.get(key) if hasattr(tags, "get") else None
        except (KeyError, ValueError, TypeError):
            value = None
        if value is None:
            continue
        text = getattr(value, "text", value)
        if isinstance(text, list | tuple):
            text = text[0] if text else ""
        text = str(text).strip()
        if text:
            return text[:300]
    return ""


def _size_text(size: int) -> str:
    """A byte count in decimal units, precise enough that a file just over a
    small limit does not read as "0.0 MB; the limit is 0 MB"."""
    for unit, scale in (("MB", 1_000_000), ("kB", 1_000)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def inspect_audio(fileobj, *, name: str, size: int, max_bytes: int) -> AudioInfo:
    """Check one uploaded file and read its metadata.

    Raises ``ValidationError`` whose message names the file and the reason:
    empty, larger than ``max_bytes``, or not audio of an accepted type.
    """
    display = PurePath(name).name or "The file"
    if size == 0:
        raise ValidationError(f"“{display}” is empty.", code="empty")
    if size > max_bytes:
        raise ValidationError(
            f"“{display}” is too large: {_size_text(size)}; the limit is "
            f"{_size_text(max_bytes)}.",
            code="too_large",
        )
    fileobj.seek(0)
    try:
        audio = mutagen.File(_Nameless(fileobj))
    except (mutagen.MutagenError, ValueError, EOFError, OSError):
        audio = None
    finally:
        fileobj.seek(0)
    kind = ACCEPTED_TYPES.get(type(audio)) if audio is not None else None
    if kind is None:
        raise ValidationError(
            f"“{display}” is not an audio file we accept ({ACCEPTED_NAMES}).",
            code="not_audio",
        )
    mime_type, extension, _ = kind
    length = getattr(getattr(audio, "info", None), "length", None)
    duration_ms = round(length * 1000) if length else None
    title = _tag_title(audio) or PurePath(display).stem.replace("_", " ").strip()
    return AudioInfo(
        title=title or "Untitled",
        duration_ms=duration_ms,
        mime_type=mime_type,
        extension=extension,
    )
