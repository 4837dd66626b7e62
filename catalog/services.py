"""Every write to the catalogue goes through here.

Services are keyword-only and own their transaction. They keep
``ArtistCatalogStats`` in step with the tracks they write, by increments in
the same transaction, so the total on the track list never needs a COUNT.
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.core.cache import cache
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import User
from accounts.services import users_get_or_create_invited
from accounts.tasks import send_invitations as send_invitations_task
from catalog.audio import AudioInfo
from catalog.importer import CatalogRow, RowError
from catalog.models import (
    ArtistCatalogStats,
    Label,
    LicenseClass,
    Track,
    new_public_id,
)
from catalog.selectors import catalog_version_key
from config.doorbell import ring_after_commit

StatsDelta = Counter  # (artist_id, license_class) -> change in track count


def catalog_changed(*, artist_ids: Iterable[int]) -> None:
    """After commit, retire the cached counts of these artists' catalogues."""
    keys = [catalog_version_key(artist_id) for artist_id in set(artist_ids)]
    if keys:
        # robust: a cache that is down is logged, never turns the committed
        # write into an error (the counts then expire with their timeout).
        transaction.on_commit(lambda: cache.delete_many(keys), robust=True)


def stats_apply(*, deltas: StatsDelta) -> None:
    """Add the given changes to the per-artist track counts (upsert, atomic).

    Uses ``INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n`` for
    increments and ``UPDATE … SET n = n + delta`` for decrements, so that
    concurrent writers add up instead of overwriting each other. Call it inside
    the transaction that wrote the tracks.
    """
    changes = sorted(deltas.items())  # key order: writers lock rows alike
    rows = [(a, c, n) for (a, c), n in changes if n > 0]
    # A decrement is a plain UPDATE: its row exists (the track was counted
    # when created), and PostgreSQL checks ``track_count >= 0`` on the row an
    # INSERT proposes before ON CONFLICT turns it into an update, so an
    # upsert of a negative delta is refused even when the sum stays >= 0.
    decrements = [(n, a, c) for (a, c), n in changes if n < 0]
    table = ArtistCatalogStats._meta.db_table
    with connection.cursor() as cursor:
        if decrements:
            cursor.executemany(
                f"UPDATE {table} SET track_count = track_count + %s "  # noqa: S608 - model table name; values are parameters
                "WHERE artist_id = %s AND license_class = %s",
                decrements,
            )
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            values = ", ".join(["(%s, %s, %s)"] * len(chunk))
            params = [value for row in chunk for value in row]
            cursor.execute(
                f"INSERT INTO {table} (artist_id, license_class, track_count) "  # noqa: S608 - model table, placeholders; values are parameters
                f"VALUES {values} ON CONFLICT (artist_id, license_class) DO UPDATE "
                f"SET track_count = {table}.track_count + excluded.track_count",
                params,
            )


def stats_rebuild(*, artist_ids: Iterable[int] | None = None) -> None:
    """Recount tracks from scratch (repair after out-of-band writes).

    Locks nothing beyond the rows it rewrites; run it when no import is
    writing the same artists.
    """
    with transaction.atomic():
        stats = ArtistCatalogStats.objects.all()
        tracks = Track.objects.all()
        if artist_ids is not None:
            artist_ids = list(artist_ids)
            stats = stats.filter(artist_id__in=artist_ids)
            tracks = tracks.filter(artist_id__in=artist_ids)
        stats.delete()
        counts = Counter()
        grouped = (
            tracks.values("artist_id", "license_class")
            .order_by()
            .annotate(n=Count("id"))
        )
        for row in grouped:
            counts[(row["artist_id"], row["license_class"])] = row["n"]
        stats_apply(deltas=counts)


_INSERT_COLUMNS = (
    "public_id",
    "artist_id",
    "title",
    "isrc",
    "duration_ms",
    "license_class",
    "label_id",
    "audio_file",
    "audio_mime_type",
    "uploaded_at",
    "updated_at",
)


def tracks_insert_bulk(*, rows: list[dict]) -> int:
    """Insert many new tracks fast: ``COPY`` on PostgreSQL, bulk insert elsewhere.

    Each row gives the model's fields (``public_id`` is generated when absent).
    Bypasses model validation and the kept counts: the caller validated the
    rows and applies the matching ``stats_apply`` in the same transaction.
    """
    if connection.vendor != "postgresql":
        return len(
            Track.objects.bulk_create([Track(**row) for row in rows], batch_size=1000)
        )
    columns = ", ".join(_INSERT_COLUMNS)
    sql = f"COPY {Track._meta.db_table} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(
                (
                    row.get("public_id") or new_public_id(),
                    row["artist_id"],
                    row["title"],
                    row.get("isrc"),
                    row.get("duration_ms"),
                    row["license_class"],
                    row.get("label_id"),
                    row.get("audio_file", ""),
                    row.get("audio_mime_type", ""),
                    row["uploaded_at"],
                    row["updated_at"],
                )
            )
    return len(rows)


def label_get_or_create(*, name: str) -> Label:
    """Find a label by its slug, creating it on first use (race-safe)."""
    name = " ".join(name.split())
    slug = slugify(name)[:200] or "label"
    label, _ = Label.objects.get_or_create(slug=slug, defaults={"name": name})
    return label


@transaction.atomic
def track_create(
    *,
    artist: User,
    title: str,
    isrc: str | None = None,
    duration_ms: int | None = None,
    license_class: str = LicenseClass.INDEPENDENT,
    label: Label | None = None,
    audio_file: UploadedFile | None = None,
    audio_mime_type: str = "",
    uploaded_at: datetime | None = None,
) -> Track:
    """Create one track and count it. Validates the model's constraints first."""
    now = uploaded_at or timezone.now()
    track = Track(
        artist=artist,
        title=title.strip(),
        isrc=isrc or None,
        duration_ms=duration_ms,
        license_class=license_class,
        label=label,
        audio_mime_type=audio_mime_type,
        uploaded_at=now,
        updated_at=now,
    )
    track.full_clean(exclude=["audio_file"])
    if audio_file is not None:
        track.audio_file.save(audio_file.name, audio_file, save=False)
    try:
        track.save()
        stats_apply(deltas=Counter({(artist.pk, license_class): 1}))
        catalog_changed(artist_ids=[artist.pk])
    except BaseException:
        # The row rolls back with the transaction; the file must go too.
        if track.audio_file:
            track.audio_file.storage.delete(track.audio_file.name)
        raise
    return track


@transaction.atomic
def track_update(*, track: Track, title: str, isrc: str | None) -> bool:
    """Correct a track's title and ISRC (already checked by
    ``TrackEditForm``); returns whether anything changed. Moves the track's
    ``updated_at``, so every cached list page that shows it is rebuilt."""
    locked = Track.objects.select_for_update().get(pk=track.pk)
    title = title.strip()
    if (locked.title, locked.isrc) == (title, isrc):
        return False
    locked.title, locked.isrc = title, isrc
    locked.updated_at = timezone.now()
    locked.full_clean(exclude=["audio_file"])
    locked.save(update_fields=["title", "isrc", "updated_at"])
    catalog_changed(artist_ids=[locked.artist_id])
    track.title, track.isrc, track.updated_at = title, isrc, locked.updated_at
    return True


def tracks_upload(
    *, artist: User, uploads: list[tuple[UploadedFile, AudioInfo]]
) -> list[Track]:
    """Store checked audio files as new independent tracks, all or none.

    Files are written under random names first; if any row fails to save the
    transaction rolls back and every file written so far is deleted, so a
    refused upload leaves neither a row nor a file behind.
    """
    created: list[Track] = []
    try:
        with transaction.atomic():
            for upload, info in uploads:
                upload.name = f"upload.{info.extension}"
                created.append(
                    track_create(
                        artist=artist,
                        title=info.title,
                        duration_ms=info.duration_ms,
                        audio_file=upload,
                        audio_mime_type=info.mime_type,
                    )
                )
    except BaseException:
        for track in created:
            if track.audio_file:
                track.audio_file.storage.delete(track.audio_file.name)
        raise
    return created


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    invited_user_ids: list[int] = field(default_factory=list)
    # Tracks whose licence class or artist the import changed: ``consent``
    # re-evaluates their eligibility (the rule and the default both follow
    # from them).
    reclassified_track_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "invited": len(self.invited_user_ids),
            "errors": [{"line": e.line, "reason": e.reason} for e in self.errors],
        }


IMPORT_BATCH_SIZE = 2000
_COMPARED = ("title", "artist_id", "license_class", "label_id", "duration_ms")


def catalog_import(
    *,
    rows: Iterable[CatalogRow | RowError],
    batch_size: int = IMPORT_BATCH_SIZE,
    on_batch=None,
    after_batch_write=None,
) -> ImportReport:
    """Upsert tracks by ISRC from validated rows, in batches.

    Each batch is one transaction: it creates missing artists (invited by
    e-mail after commit) and labels, inserts new tracks, updates changed ones
    and counts the rest as unchanged, so importing the same file twice
    changes nothing the second time. Rejected rows are reported and never stop
    valid ones. A later row repeating an ISRC already seen in the same file is
    rejected, naming the first line.

    ``after_batch_write(created_isrcs=…, reclassified_track_ids=…)`` runs inside
    each batch's transaction, so a caller (``consent``) can extend the batch.
    """
    report = ImportReport()
    known = _ImportLookups()
    seen: dict[str, int] = {}
    batch: list[CatalogRow] = []
    for row in rows:
        if isinstance(row, RowError):
            report.rejected += 1
            report.errors.append(row)
            continue
        first = seen.setdefault(row.isrc, row.line)
        if first != row.line:
            report.rejected += 1
            report.errors.append(
                RowError(row.line, f"ISRC repeats line {first} of this file")
            )
            continue
        batch.append(row)
        if len(batch) >= batch_size:
            _import_batch(batch, report, known, after_batch_write)
            batch = []
            if on_batch:
                on_batch(report)
    if batch:
        _import_batch(batch, report, known, after_batch_write)
        if on_batch:
            on_batch(report)
    return report


@dataclass
class _ImportLookups:
    """Artists and labels already resolved by earlier batches of one import.

    Only ids of committed rows are kept: a batch adds to it after commit.
    """

    artist_ids: dict[str, int] = field(default_factory=dict)
    label_ids: dict[str, int] = field(default_factory=dict)


def _import_batch(
    batch: list[CatalogRow],
    report: ImportReport,
    known: _ImportLookups,
    after_batch_write=None,
) -> None:
    now = timezone.now()
    with transaction.atomic():
        emails = {row.artist_email for row in batch} - known.artist_ids.keys()
        users, new_user_ids = users_get_or_create_invited(emails=emails)
        artist_ids = {**known.artist_ids, **{e: u.pk for e, u in users.items()}}
        label_ids = dict(known.label_ids)
        for name in sorted(
            {row.label for row in batch if row.label} - label_ids.keys()
        ):
            label_ids[name] = label_get_or_create(name=name).pk
        existing = {
            track.isrc: track
            for track in Track.objects.select_for_update()
            .filter(isrc__in=[row.isrc for row in batch])
            .only("isrc", *_COMPARED)
            .order_by("pk")
        }
        deltas: StatsDelta = Counter()
        to_create: list[dict] = []
        to_update: list[Track] = []
        reclassified: list[int] = []
        for row in batch:
            wanted = {
                "title": row.title,
                "artist_id": artist_ids[row.artist_email],
                "license_class": row.license_class,
                "label_id": label_ids[row.label] if row.label else None,
                "duration_ms": row.duration_ms,
            }
            track = existing.get(row.isrc)
            if track is None:
                to_create.append(
                    {"isrc": row.isrc, "uploaded_at": now, "updated_at": now, **wanted}
                )
                deltas[(wanted["artist_id"], row.license_class)] += 1
                continue
            if all(getattr(track, name) == wanted[name] for name in _COMPARED):
                report.unchanged += 1
                continue
            deltas[(track.artist_id, track.license_class)] -= 1
            deltas[(wanted["artist_id"], row.license_class)] += 1
            if (track.license_class, track.artist_id) != (
                row.license_class,
                wanted["artist_id"],
            ):
                reclassified.append(track.pk)
            for name, value in wanted.items():
                setattr(track, name, value)
            track.updated_at = now
            to_update.append(track)
        tracks_insert_bulk(rows=to_create)
        if to_update:
            Track.objects.bulk_update(
                to_update, [*_COMPARED, "updated_at"], batch_size=1000
            )
        stats_apply(deltas=deltas)
        # Every created or updated row has a key here (old and new artist),
        # even when its net change is 0: a new title changes search counts.
        catalog_changed(artist_ids=[artist_id for artist_id, _ in deltas])
        if after_batch_write is not None:
            after_batch_write(
                created_isrcs=[row["isrc"] for row in to_create],
                reclassified_track_ids=reclassified,
            )
        if new_user_ids:
            ring_after_commit(send_invitations_task, list(new_user_ids))
    known.artist_ids = artist_ids
    known.label_ids = label_ids
    report.reclassified_track_ids.extend(reclassified)
    report.created += len(to_create)
    report.updated += len(to_update)
    report.invited_user_ids.extend(new_user_ids)
