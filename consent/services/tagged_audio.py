"""Tagged copies of the tracks' audio: what a download from Refrain is.

A worker writes them (``tagged_copies_build``, the ``consent.tag_audio``
task, rung by the propagation fan-out for every changed track with audio, and
by a download that found no copy); a request only ever serves one
(``tagged_copy_open``). The stored original is read, never written. See
``consent.signals.tags`` for the tags and the files.
"""

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import mutagen
from django.conf import settings
from django.db import connection

from catalog.models import Track
from config.doorbell import ring_after_commit
from consent.models import TrackConsent
from consent.partners.feed import eligible_bits_sql, permitted
from consent.signals import tags
from consent.signals.documents import track_path
from consent.tasks import tag_audio as tag_audio_task

logger = logging.getLogger("refrain.tags")

# A temporary file older than this was left by a worker that died writing it.
TEMP_MAX_AGE_SECONDS = 3600
COPY_BLOCK = 1 << 20


@dataclass(frozen=True)
class TrackAudioState:
    """A track's audio and answer as one statement read them."""

    track_id: int
    public_id: str
    version: int
    audio_name: str
    permitted: dict[str, bool]

    @property
    def tags(self) -> dict[str, str]:
        page_url = settings.REFRAIN_SITE_URL.rstrip("/") + track_path(self.public_id)
        return tags.audio_tags(
            permitted=self.permitted, version=self.version, page_url=page_url
        )


def track_audio_state(*, track_id: int) -> TrackAudioState | None:
    """The track's version, audio file and stored eligibility in one
    statement (one snapshot: the version and the answer always belong
    together); None when there is no such track."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.id, t.public_id, t.consent_version, t.audio_file, "  # noqa: S608 - model tables, fixed fragments; the id is a parameter
            f"COALESCE({eligible_bits_sql('c.use', 'c.eligible')}, 0) "
            f"FROM {Track._meta.db_table} t "
            f"LEFT JOIN {TrackConsent._meta.db_table} c ON c.track_id = t.id "
            "WHERE t.id = %s GROUP BY t.id, t.public_id, t.consent_version, "
            "t.audio_file",
            [track_id],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    pk, public_id, version, audio_name, bits = row
    return TrackAudioState(pk, public_id, version, audio_name or "", permitted(bits))


def tagged_copy_build(*, track_id: int) -> Path | None:
    """Make sure the tagged copy of the track's current consent version
    exists, and remove the older ones; returns its path (None: the track
    has no audio or is gone, or the tags could not be written, which leaves
    a ``.failed`` marker with the reason).

    Idempotent and safe beside another build of the same track: each writes
    its own temporary file and renames it into place, and a build that finds
    a newer version's copy removes its own. The original is only read.
    """
    state = track_audio_state(track_id=track_id)
    if state is None or not state.audio_name:
        _remove(tags.copies(track_id))
        return None
    target = tags.copy_path(
        track_id=track_id, version=state.version, audio_name=state.audio_name
    )
    if not target.exists() and not _write(state, target):
        return None
    return target if _prune(track_id, keep=target) else None


def _write(state: TrackAudioState, target: Path) -> bool:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=tags.TEMP_PREFIX, suffix=target.suffix, dir=target.parent
    )
    try:
        storage = Track._meta.get_field("audio_file").storage
        with os.fdopen(handle, "wb") as out, storage.open(state.audio_name) as src:
            shutil.copyfileobj(src, out, COPY_BLOCK)
        tags.tags_write(Path(temporary), state.tags)
        os.replace(temporary, target)
    except FileNotFoundError:
        logger.error("track %s: its audio file is missing", state.track_id)
        return False
    except (tags.TagsUnsupported, mutagen.MutagenError) as error:
        logger.warning("track %s: tags not written: %s", state.track_id, error)
        marker = tags.failed_path(
            track_id=state.track_id, version=state.version, audio_name=state.audio_name
        )
        marker.write_text(f"{type(error).__name__}: {error}\n")
        return False
    finally:
        Path(temporary).unlink(missing_ok=True)
    return True


def _prune(track_id: int, *, keep: Path) -> bool:
    """Remove every other copy and marker of this version or an older one,
    and temporary files left by dead workers. Returns False (and removes
    ``keep`` too) when a newer version's copy is there already."""
    found = tags.copies(track_id)
    kept = next((copy for copy in found if copy.path == keep), None)
    if kept is None:
        return False
    newer = [copy for copy in found if copy.version > kept.version]
    _remove([copy for copy in found if copy.path != keep and copy not in newer])
    stale_before = time.time() - TEMP_MAX_AGE_SECONDS
    for temporary in tags.temporary_files(track_id):
        try:
            if temporary.stat().st_mtime < stale_before:
                temporary.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
    if newer:
        keep.unlink(missing_ok=True)
        return False
    return True


def _remove(found: list[tags.CopyFile]) -> None:
    for copy in found:
        copy.path.unlink(missing_ok=True)


def tagged_copies_build(*, track_ids: list[int]) -> int:
    """``tagged_copy_build`` for each track; returns how many have a copy."""
    return sum(tagged_copy_build(track_id=pk) is not None for pk in track_ids)


@dataclass
class TaggedDownload:
    """What a download finds: the open copy, or why there is none yet."""

    file: BinaryIO | None = None
    failed: str = ""  # the reason the tags could not be written

    @property
    def preparing(self) -> bool:
        return self.file is None and not self.failed


def tagged_copy_open(*, track: Track) -> TaggedDownload:
    """The tagged copy of ``track``'s current version, opened for reading
    (an open file outlives a rename or removal by a worker), or, when there
    is none yet, a ring of the worker that builds it (after any commit).
    Never writes: a request does not wait on mutagen or on a copy."""
    name = track.audio_file.name
    path = tags.copy_path(
        track_id=track.pk, version=track.consent_version, audio_name=name
    )
    try:
        return TaggedDownload(file=path.open("rb"))
    except FileNotFoundError:
        pass
    marker = tags.failed_path(
        track_id=track.pk, version=track.consent_version, audio_name=name
    )
    try:
        return TaggedDownload(failed=marker.read_text().strip())
    except FileNotFoundError:
        pass
    ring_after_commit(tag_audio_task, [track.pk])
    return TaggedDownload()
