"""Recognising audio by its content (mutagen), never by its file name."""

import math
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
# A header can claim any length; a track that says it is longer than this is
# refused (it is also far more than a duration in milliseconds can hold in the
# database's integer).
MAX_DURATION_SECONDS = 24 * 3600
# The fewest bits a second of audio can take in a format whose frames have a
# floor: MP3's lowest bitrate (MPEG-2.5 layer III) is 8 kbit/s, whatever the
# content. WAV uses its own rate (below). FLAC, Ogg and M4A can store silence
# in almost nothing, so only the maximum above applies to them.
MIN_BITS_PER_SECOND: dict[type, int] = {MP3: 8_000}
# Headers round; a second of slack keeps a tiny but honest file acceptable.
DURATION_SLACK_SECONDS = 1.0
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


def _duration_text(seconds: float) -> str:
    if seconds >= 3600:
        hours = round(seconds / 3600)
        return f"{hours:,} hour{'s' if hours != 1 else ''}"
    if seconds >= 60:
        minutes = round(seconds / 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:.1f}".removesuffix(".0") + " seconds"


def _min_bits_per_second(audio) -> int:
    """The lowest bitrate the file's own format allows (0: no floor).

    A WAV holds its samples uncompressed: its header's bitrate (channels ×
    bits per sample × sample rate) is the rate its data chunk is read at.
    """
    if isinstance(audio, WAVE):
        return max(int(getattr(audio.info, "bitrate", 0) or 0), 0)
    return MIN_BITS_PER_SECOND.get(type(audio), 0)


def _declared_duration_ms(audio, *, display: str, size: int) -> int | None:
    """The duration the file's header declares, in milliseconds, once it is
    shown to be possible: at most ``MAX_DURATION_SECONDS``, and no longer than
    the file's bytes can hold at the lowest bitrate of its format (an MP3
    whose Xing header counts 0xFFFFFFFF frames, a 60-byte WAV whose data chunk
    says 149 hours). Raises ``ValidationError`` (code ``bad_duration``)."""
    length = getattr(getattr(audio, "info", None), "length", None)
    if not length:
        return None
    if not isinstance(length, int | float) or not math.isfinite(length) or length < 0:
        raise ValidationError(
            f"“{display}” has a length we cannot read; the file may be damaged.",
            code="bad_duration",
        )
    bits_per_second = _min_bits_per_second(audio)
    if bits_per_second:
        holdable = size * 8 / bits_per_second + DURATION_SLACK_SECONDS
        if length > holdable:
            raise ValidationError(
                f"“{display}” says it lasts {_duration_text(length)} but holds "
                f"only {_size_text(size)} of audio; the file is damaged or its "
                "header is wrong.",
                code="bad_duration",
            )
    if length > MAX_DURATION_SECONDS:
        raise ValidationError(
            f"“{display}” says it lasts {_duration_text(length)}; the longest "
            f"track we accept lasts {_duration_text(MAX_DURATION_SECONDS)}.",
            code="bad_duration",
        )
    return round(length * 1000)


def inspect_audio(fileobj, *, name: str, size: int, max_bytes: int) -> AudioInfo:
    """Check one uploaded file and read its metadata.

    Raises ``ValidationError`` whose message names the file and the reason:
    empty, larger than ``max_bytes``, not audio of an accepted type, or a
    duration its header declares that the file cannot hold.
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
    duration_ms = _declared_duration_ms(audio, display=display, size=size)
    title = _tag_title(audio) or PurePath(display).stem.replace("_", " ").strip()
    return AudioInfo(
        title=title or "Untitled",
        duration_ms=duration_ms,
        mime_type=mime_type,
        extension=extension,
    )
