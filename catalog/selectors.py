"""Permission-scoped reads of the catalogue. Every one starts from the owner."""

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q, QuerySet, Sum
from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_datetime

from accounts.models import User
from catalog.isrc import looks_like_isrc, normalise_isrc
from catalog.models import ArtistCatalogStats, LicenseClass, Track
from config.input_guard import text_problem

PAGE_SIZE = 50

# sort key -> (model field, descending?)
SORTS: dict[str, tuple[str, bool]] = {
    "-uploaded": ("uploaded_at", True),
    "uploaded": ("uploaded_at", False),
    "title": ("title", False),
    "-title": ("title", True),
    "-changed": ("updated_at", True),
    "changed": ("updated_at", False),
}
DEFAULT_SORT = "-uploaded"
SORT_LABELS = {
    "-uploaded": "Newest upload first",
    "uploaded": "Oldest upload first",
    "title": "Title A–Z",
    "-title": "Title Z–A",
    "-changed": "Recently changed first",
    "changed": "Least recently changed first",
}


@dataclass(frozen=True)
class TrackFilters:
    """Validated filters of the track list (built by ``catalog.forms``)."""

    q: str = ""
    license: str = ""
    sort: str = DEFAULT_SORT

    @property
    def is_filtered(self) -> bool:
        return bool(self.q or self.license)


@dataclass
class TrackPage:
    tracks: list[Track]
    total: int
    sort: str
    next_cursor: str | None = None
    previous_cursor: str | None = None
    is_first: bool = True

    @property
    def sort_label(self) -> str:
        return SORT_LABELS[self.sort]


def tracks_for_owner(*, owner: User) -> QuerySet[Track]:
    return Track.objects.filter(artist=owner)


def track_for_owner(*, owner: User, public_id: str) -> Track:
    """The owner's track, or 404: another artist's track is indistinguishable
    from one that does not exist."""
    return get_object_or_404(
        tracks_for_owner(owner=owner).select_related("label"), public_id=public_id
    )


def track_public(*, public_id: str) -> Track:
    """Any track by its public id, for the public track page, or 404.

    Loads only what the public may see (title, licence class, artist name)
    and the ids; every uploaded track is public (there is no private flag).
    """
    return get_object_or_404(
        Track.objects.select_related("artist").only(
            "id",
            "public_id",
            "title",
            "license_class",
            "consent_version",
            "artist__id",
            "artist__display_name",
        ),
        public_id=public_id,
    )


def license_classes_of(*, artist: User) -> list[str]:
    """The licence classes the artist has tracks in (from the kept counts);
    an artist with none has independent ones to come (uploads are)."""
    classes = list(
        ArtistCatalogStats.objects.filter(artist=artist, track_count__gt=0)
        .order_by("license_class")
        .values_list("license_class", flat=True)
    )
    return classes or [LicenseClass.INDEPENDENT]


def track_list_for_owner(*, owner: User, filters: TrackFilters) -> QuerySet[Track]:
    """The owner's tracks matching the filters, in the requested order."""
    queryset = tracks_for_owner(owner=owner)
    if filters.license:
        queryset = queryset.filter(license_class=filters.license)
    if filters.q:
        if looks_like_isrc(filters.q):
            queryset = queryset.filter(isrc=normalise_isrc(filters.q))
        else:
            queryset = queryset.filter(title__icontains=filters.q)
    field_name, descending = SORTS[filters.sort]
    prefix = "-" if descending else ""
    return queryset.order_by(f"{prefix}{field_name}", f"{prefix}id")


def catalog_version_key(artist_id: int) -> str:
    return f"catalog:version:{artist_id}"


def _catalog_version(artist_id: int) -> str:
    """A token that changes whenever the artist's catalogue changes.

    Services delete it after commit; a missing token is replaced by a random
    one, so an evicted token can never bring back an old cached count.
    """
    key = catalog_version_key(artist_id)
    version = cache.get(key)
    if version is None:
        cache.add(key, secrets.token_hex(8), timeout=None)
        version = cache.get(key) or "x"
    return version


def track_count_for_owner(*, owner: User, filters: TrackFilters) -> int:
    """The number of tracks the list shows: from the kept counts when only the
    licence class filters; a search is counted once per catalogue version and
    cached (paging through results repeats the same count)."""
    if filters.q:
        digest = hashlib.sha256(f"{filters.license}\0{filters.q}".encode()).hexdigest()[
            :24
        ]
        key = f"catalog:count:{owner.pk}:{_catalog_version(owner.pk)}:{digest}"
        count = cache.get(key)
        if count is None:
            count = (
                track_list_for_owner(owner=owner, filters=filters).order_by().count()
            )
            cache.set(key, count, timeout=3600)
        return count
    stats = ArtistCatalogStats.objects.filter(artist=owner)
    if filters.license:
        stats = stats.filter(license_class=filters.license)
    return stats.aggregate(total=Sum("track_count"))["total"] or 0


def _encode_cursor(
    track: Track, field_name: str, direction: str, sort: str | None = None
) -> str:
    value = getattr(track, field_name)
    if isinstance(value, datetime):
        value = value.isoformat()
    position = [direction, value, track.pk]
    if sort is not None:
        # The sort it belongs to: a cursor of "newest first" must not be read
        # as a position in "oldest first" (same field, other direction).
        position.append(sort)
    raw = json.dumps(position, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(
    cursor: str, field_name: str, sort: str | None = None
) -> tuple[str, object, int] | None:
    """Parse a cursor from the URL; None when it is malformed or belongs to
    another sort than ``sort`` (then the list shows its first page).

    A cursor is input like any other: whatever it decodes to (a date out of
    range, a lone surrogate, a NUL, a number where a string was, a huge id)
    is None here, never an error from the database."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded))
        if isinstance(position, list) and len(position) == 4:
            *position, cursor_sort = position
            if sort is not None and cursor_sort != sort:
                return None
        direction, value, pk = position
    except (ValueError, TypeError, RecursionError):
        return None
    if direction not in ("next", "prev") or not _is_row_id(pk):
        return None
    value = _cursor_value(value, is_time=field_name.endswith("_at"))
    if value is None:
        return None
    return direction, value, pk


_MAX_ROW_ID = 2**63 - 1  # a bigint


def _is_row_id(pk: object) -> bool:
    return type(pk) is int and 0 < pk <= _MAX_ROW_ID


def _cursor_value(value: object, *, is_time: bool) -> object | None:
    """The sort field's value a cursor holds, or None when it is unusable."""
    if not isinstance(value, str) or text_problem(value):
        return None
    if not is_time:
        return value
    try:
        moment = parse_datetime(value)
        if moment is None or moment.tzinfo is None:
            return None
        # Out of range once in UTC (year 1 at +14:00) is an OverflowError.
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _after(field_name: str, value, pk: int, descending: bool) -> Q:
    """Rows strictly after (value, pk) in the list's order.

    Written as ``field <= v AND (field < v OR id < pk)`` (for descending) so the
    database seeks the (artist, field, id) index instead of scanning from the
    start: a deep page costs the same as the first.
    """
    if descending:
        return Q(**{f"{field_name}__lte": value}) & (
            Q(**{f"{field_name}__lt": value}) | Q(pk__lt=pk)
        )
    return Q(**{f"{field_name}__gte": value}) & (
        Q(**{f"{field_name}__gt": value}) | Q(pk__gt=pk)
    )


def _fetch_page(queryset: QuerySet[Track], *, searching: bool) -> list[Track]:
    """Evaluate one page; for a title search on PostgreSQL, walk the sort index.

    PostgreSQL cannot estimate how many titles match ``LIKE '%word%'`` and
    guesses very few, so it reads every one of the artist's rows and sorts
    them. Walking the artist's (field, id) index in order and stopping at the
    page's last match is never slower for one artist and much faster for a
    common word, so the planner is told to do that for this one statement.
    """
    if not searching or connection.vendor != "postgresql":
        return list(queryset)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off")
        return list(queryset)


def track_page_for_owner(
    *,
    owner: User,
    filters: TrackFilters,
    cursor: str = "",
    page_size: int = PAGE_SIZE,
    extra: Q | None = None,
) -> TrackPage:
    """One page of the owner's track list, by keyset (cursor) pagination.

    Two queries whatever the page depth or catalogue size: the page (one row
    more than shown, to know whether there is a next page) and the total.
    ``extra`` narrows the list further (``consent`` passes its filters); the
    total is then counted directly.
    """
    field_name, descending = SORTS[filters.sort]
    base = track_list_for_owner(owner=owner, filters=filters)
    if extra is not None:
        base = base.filter(extra)
    queryset = base.select_related("label")
    position = decode_cursor(cursor, field_name, filters.sort) if cursor else None
    going_back = False
    if position:
        direction, value, pk = position
        going_back = direction == "prev"
        queryset = queryset.filter(
            _after(field_name, value, pk, descending ^ going_back)
        )
        if going_back:
            queryset = queryset.reverse()
    # Only a title search needs the planner hint: an ISRC search is one probe
    # of the unique ISRC index, which the hint would turn into a walk over
    # every one of the artist's rows.
    title_search = bool(filters.q) and not looks_like_isrc(filters.q)
    rows = _fetch_page(queryset[: page_size + 1], searching=title_search)
    has_more = len(rows) > page_size
    rows = rows[:page_size]
    if going_back:
        rows.reverse()
    page = TrackPage(
        tracks=rows,
        total=(
            base.order_by().count()
            if extra is not None
            else track_count_for_owner(owner=owner, filters=filters)
        ),
        sort=filters.sort,
        is_first=position is None or (going_back and not has_more),
    )
    if rows:
        if (not going_back and has_more) or going_back:
            page.next_cursor = _encode_cursor(
                rows[-1], field_name, "next", filters.sort
            )
        if position is not None and not page.is_first:
            page.previous_cursor = _encode_cursor(
                rows[0], field_name, "prev", filters.sort
            )
    return page
