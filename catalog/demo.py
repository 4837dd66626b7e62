"""Demo and benchmark catalogues: realistic titles, valid ISRCs, bulk loading."""

import random
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from catalog.importer import CatalogRow
from catalog.models import ArtistCatalogStats, LicenseClass, Track

_MOODS = [
    "Midnight",
    "Golden",
    "Paper",
    "Neon",
    "Quiet",
    "Electric",
    "Hollow",
    "Velvet",
    "Distant",
    "Silver",
    "Broken",
    "Northern",
    "Summer",
    "Winter",
    "Slow",
    "Wild",
    "Borrowed",
    "Crimson",
    "Lonely",
    "Bright",
    "Hidden",
    "Falling",
    "Restless",
    "Open",
]
_THINGS = [
    "Drive",
    "Hour",
    "Lights",
    "Tide",
    "Letters",
    "Garden",
    "Static",
    "Harbour",
    "Echoes",
    "Skyline",
    "River",
    "Parade",
    "Signals",
    "Bloom",
    "Avenue",
    "Frequency",
    "Lullaby",
    "Horizon",
    "Satellites",
    "Weather",
    "Machines",
    "Postcards",
    "Waves",
    "Fireflies",
]
_SUFFIXES = ["", "", "", " (Live)", " (Acoustic)", " (Demo)", " Pt. II", " (Remix)"]


def demo_title(index: int, rng: random.Random) -> str:
    return f"{rng.choice(_MOODS)} {rng.choice(_THINGS)}{rng.choice(_SUFFIXES)}"


def demo_isrc(registrant: str, year: int, number: int) -> str:
    """A syntactically valid ISRC in the compact stored form."""
    return f"QZ{registrant}{year:02d}{number:05d}"


def demo_rows(
    *, email: str, prefix: str, count: int, license_class: str, labels: list[str]
) -> list[CatalogRow]:
    """Deterministic rows for one demo artist (same input, same rows)."""
    rng = random.Random(f"{email}:{prefix}")  # noqa: S311 - reproducible demo data, not a secret
    rows = []
    for index in range(count):
        rows.append(
            CatalogRow(
                line=index + 1,
                isrc=demo_isrc(prefix, 24, index + 1),
                title=demo_title(index, rng),
                artist_email=email,
                license_class=license_class,
                label=labels[index % len(labels)] if labels else "",
                duration_ms=rng.randint(95_000, 420_000),
            )
        )
    return rows


# --- Bulk generation for benchmarks -------------------------------------------


@dataclass
class BulkResult:
    artists: int
    tracks: int
    seconds: float
    artist_ids: list[int]


def _base36(value: int, width: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    for _ in range(width):
        value, rest = divmod(value, 36)
        out = digits[rest] + out
    return out


def bulk_isrc(serial: int) -> str:
    """The ``serial``-th synthetic ISRC (country ZZ, never a real one)."""
    registrant, number = divmod(serial, 100_000)
    return f"ZZ{_base36(registrant, 3)}26{number:05d}"


def _track_rows(
    artist_ids: list[int], per_artist: int, first_serial: int, rng: random.Random
) -> Iterator[tuple]:
    now = timezone.now()
    serial = first_serial
    for artist_id in artist_ids:
        for index in range(per_artist):
            uploaded = now - timedelta(minutes=rng.randint(0, 3 * 365 * 24 * 60))
            yield (
                secrets.token_urlsafe(12),
                artist_id,
                demo_title(index, rng),
                bulk_isrc(serial),
                rng.randint(95_000, 420_000),
                LicenseClass.INDEPENDENT,
                None,
                "",
                "",
                uploaded,
                uploaded,
            )
            serial += 1


_TRACK_COLUMNS = (
    "public_id, artist_id, title, isrc, duration_ms, license_class, label_id, "
    "audio_file, audio_mime_type, uploaded_at, updated_at"
)


def catalog_bulk_generate(
    *, artists: int, tracks_per_artist: int, prefix: str = "bulk", seed: int = 1
) -> BulkResult:
    """Create ``artists`` artists with ``tracks_per_artist`` independent tracks each.

    For benchmarks: one transaction, rows streamed with ``COPY`` on PostgreSQL
    (multi-row inserts elsewhere); accounts have an unusable password. Refuses
    to run twice with the same prefix.
    """
    started = time.monotonic()
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not a secret
    if User.objects.filter(email=f"{prefix}-000000@example.com").exists():
        raise ValueError(
            f"artists with prefix {prefix!r} already exist; choose another --prefix"
        )
    unusable = make_password(None)
    with transaction.atomic():
        users = User.objects.bulk_create(
            [
                User(
                    email=f"{prefix}-{index:06d}@example.com",
                    display_name=f"Artist {prefix} {index}",
                    password=unusable,
                )
                for index in range(artists)
            ],
            batch_size=5000,
        )
        artist_ids = [user.pk for user in users]
        if any(pk is None for pk in artist_ids):  # backend returned no ids
            artist_ids = list(
                User.objects.filter(email__startswith=f"{prefix}-")
                .order_by("email")
                .values_list("pk", flat=True)
            )
        EmailAddress.objects.bulk_create(
            [
                EmailAddress(user_id=pk, email=user.email, verified=True, primary=True)
                for pk, user in zip(artist_ids, users, strict=True)
            ],
            batch_size=5000,
        )
        first_serial = Track.objects.filter(isrc__startswith="ZZ").count()
        rows = _track_rows(artist_ids, tracks_per_artist, first_serial, rng)
        table = Track._meta.db_table
        if connection.vendor == "postgresql":
            with (
                connection.cursor() as cursor,
                cursor.cursor.copy(
                    f"COPY {table} ({_TRACK_COLUMNS}) FROM STDIN"
                ) as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * 11)
            with connection.cursor() as cursor:
                batch = []
                for row in rows:
                    batch.append(row)
                    if len(batch) == 5000:
                        cursor.executemany(
                            f"INSERT INTO {table} ({_TRACK_COLUMNS}) "  # noqa: S608 - model table, fixed columns, placeholders
                            f"VALUES ({placeholders})",
                            batch,
                        )
                        batch = []
                if batch:
                    cursor.executemany(
                        f"INSERT INTO {table} ({_TRACK_COLUMNS}) "  # noqa: S608 - model table, fixed columns, placeholders
                        f"VALUES ({placeholders})",
                        batch,
                    )
        ArtistCatalogStats.objects.bulk_create(
            [
                ArtistCatalogStats(
                    artist_id=pk,
                    license_class=LicenseClass.INDEPENDENT,
                    track_count=tracks_per_artist,
                )
                for pk in artist_ids
            ],
            batch_size=5000,
        )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")
    return BulkResult(
        artists=artists,
        tracks=artists * tracks_per_artist,
        seconds=time.monotonic() - started,
        artist_ids=artist_ids,
    )
