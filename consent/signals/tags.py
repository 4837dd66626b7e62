"""A track's answer inside its audio file: the tags, written and read with
mutagen, and where the tagged copies are kept.

The tags (``audio_tags``): the four entries of the CAWG assertion, keyed as
``formats.MAPPING`` names them, each ``allowed`` or ``notAllowed``; the
consent version they state; and the track's public page, whose answer is the
live one::

    cawg.ai_generative_training = notAllowed
    cawg.ai_training = notAllowed
    cawg.ai_inference = allowed
    cawg.data_mining = notAllowed
    refrain.consent_version = 12
    refrain.track_url = https://refrain.example/t/<public id>/

Where each format holds them (``tags_write``):

* MP3, WAV (its ``id3`` chunk) and any file mutagen reads ID3 from: ID3v2
  ``TXXX`` frames, the key as the description (UTF-8; an ID3v2.3 tag stays
  2.3). mutagen does not write WAV's ``LIST/INFO`` chunk, whose fixed
  four-letter fields have no place for these keys anyway.
* FLAC and Ogg (Vorbis, Opus, FLAC): Vorbis comments ``key=value`` (field
  names are case-insensitive; readers show them lower-case).
* M4A: iTunes-style freeform atoms ``----:com.apple.iTunes:<key>`` (UTF-8).

A key already in the file is replaced, never doubled; every other tag of the
original is kept.

The copies (``CopyFile``): one directory per track under
``REFRAIN_TAGGED_AUDIO_DIR`` (shared by web and worker processes, outside
MEDIA so no static server exposes it), ``<id mod 1000>/<track id>/``, holding
``v<version>-<fingerprint>.<extension>``. The fingerprint covers the tags'
format, the site URL and the original's stored name, so a deploy that
changes what is written, or a replaced original, never serves an old copy.
A copy is written to a ``.tmp-`` file and renamed into place (readers see a
whole file or none); ``v<version>-<fingerprint>.failed`` records a file the
tags could not be written to, with the reason.
"""

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import mutagen
from django.conf import settings
from mutagen._vorbis import VComment
from mutagen.id3 import ID3, TXXX, Encoding
from mutagen.mp4 import MP4FreeForm, MP4Tags

from consent.signals import formats

# Bump when what is written changes for the same answer (new copies follow).
TAG_FORMAT = 1
VERSION_KEY = "refrain.consent_version"
TRACK_URL_KEY = "refrain.track_url"
CAWG_KEYS = tuple(keys.cawg for keys in formats.MAPPING.values())
KEYS = (*CAWG_KEYS, VERSION_KEY, TRACK_URL_KEY)
MP4_MEAN = "com.apple.iTunes"
TEMP_PREFIX = ".tmp-"
FAILED = "failed"
COPY_NAME = re.compile(
    r"^v(?P<version>\d+)-(?P<fingerprint>[0-9a-f]{12})\.(?P<ext>\w+)$"
)


class TagsUnsupported(Exception):
    """mutagen cannot write tags to this file."""


def audio_tags(*, permitted: formats.Permitted, version: int, page_url: str) -> dict:
    """The tags of one track at one consent version, in ``KEYS`` order."""
    entries = formats.cawg_assertion(permitted)["data"]["entries"]
    return {
        **{key: entries[key]["use"] for key in CAWG_KEYS},
        VERSION_KEY: str(version),
        TRACK_URL_KEY: page_url,
    }


def tags_write(path: Path, tags: Mapping[str, str]) -> None:
    """Write ``tags`` into the audio file at ``path`` in place (see the module
    docstring for where). Raises ``TagsUnsupported`` for a file mutagen does
    not know or cannot tag, ``mutagen.MutagenError`` for a damaged one."""
    audio = mutagen.File(path)
    if audio is None:
        raise TagsUnsupported("not an audio file mutagen knows")
    if audio.tags is None:
        try:
            audio.add_tags()
        except (NotImplementedError, mutagen.MutagenError) as error:
            raise TagsUnsupported(f"{type(audio).__name__} takes no tags") from error
    held = audio.tags
    if isinstance(held, ID3):
        for key, value in tags.items():
            held.delall(f"TXXX:{key}")
            held.add(TXXX(encoding=Encoding.UTF8, desc=key, text=[value]))
        audio.save(v2_version=3 if held.version[:2] == (2, 3) else 4)
    elif isinstance(held, VComment):
        for key, value in tags.items():
            held[key] = [value]
        audio.save()
    elif isinstance(held, MP4Tags):
        for key, value in tags.items():
            held[f"----:{MP4_MEAN}:{key}"] = [MP4FreeForm(value.encode())]
        audio.save()
    else:
        raise TagsUnsupported(f"{type(audio).__name__} has no tags for these keys")


def tags_read(path: Path) -> dict[str, str]:
    """The ``KEYS`` found in the file at ``path`` (several values of one key
    are joined with "; ", so they never read as one answer)."""
    audio = mutagen.File(path)
    held = getattr(audio, "tags", None)
    found: dict[str, list[str]] = {}
    if isinstance(held, ID3):
        for frame in held.getall("TXXX"):
            if frame.desc in KEYS:
                found.setdefault(frame.desc, []).extend(map(str, frame.text))
    elif isinstance(held, VComment):
        for key in KEYS:
            if key in held:
                found[key] = list(held[key])
    elif isinstance(held, MP4Tags):
        for key in KEYS:
            values = held.get(f"----:{MP4_MEAN}:{key}", [])
            if values:
                found[key] = [bytes(value).decode(errors="replace") for value in values]
    return {key: "; ".join(values) for key, values in found.items()}


# --- The copies on disk ------------------------------------------------------


@dataclass(frozen=True)
class CopyFile:
    """A tagged copy (or a failure marker, ``failed``) in a track's folder."""

    path: Path
    version: int
    fingerprint: str
    failed: bool


def tagged_root() -> Path:
    return Path(settings.REFRAIN_TAGGED_AUDIO_DIR)


def track_folder(track_id: int) -> Path:
    return tagged_root() / f"{track_id % 1000:03d}" / str(track_id)


def fingerprint(*, audio_name: str) -> str:
    """What a copy's content depends on besides the answer and version."""
    shape = f"{TAG_FORMAT}\0{settings.REFRAIN_SITE_URL}\0{audio_name}"
    return hashlib.sha256(shape.encode()).hexdigest()[:12]


def extension(audio_name: str) -> str:
    """The original's extension (the one mutagen recognised at upload)."""
    suffix = Path(audio_name).suffix.lstrip(".").lower()
    return suffix if suffix.isalnum() and suffix != FAILED else "bin"


def copy_path(*, track_id: int, version: int, audio_name: str) -> Path:
    name = f"v{version}-{fingerprint(audio_name=audio_name)}"
    return track_folder(track_id) / f"{name}.{extension(audio_name)}"


def failed_path(*, track_id: int, version: int, audio_name: str) -> Path:
    name = f"v{version}-{fingerprint(audio_name=audio_name)}"
    return track_folder(track_id) / f"{name}.{FAILED}"


def copies(track_id: int) -> list[CopyFile]:
    """The copies and failure markers in the track's folder, oldest version
    first (temporary files are left out); none when there is no folder."""
    try:
        entries = list(os.scandir(track_folder(track_id)))
    except FileNotFoundError:
        return []
    found = []
    for entry in entries:
        match = COPY_NAME.match(entry.name)
        if match is None:
            continue
        found.append(
            CopyFile(
                path=Path(entry.path),
                version=int(match["version"]),
                fingerprint=match["fingerprint"],
                failed=match["ext"] == FAILED,
            )
        )
    return sorted(found, key=lambda copy: (copy.version, copy.path.name))


def temporary_files(track_id: int) -> list[Path]:
    """Copies being written (or left by a worker that died while writing)."""
    try:
        entries = list(os.scandir(track_folder(track_id)))
    except FileNotFoundError:
        return []
    return [Path(e.path) for e in entries if e.name.startswith(TEMP_PREFIX)]
