"""The tracks behind a figure, and the ledger search: a page at a time by
id (keyset), or every row as CSV streamed in chunks from one REPEATABLE
READ snapshot, so a million rows export at flat memory."""

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection
from django.db.models import QuerySet

from catalog.models import Track
from consent.audit.figures import FROM_SQL, Figure, drill_down_sql
from consent.db import one_snapshot
from consent.models import LedgerEntry

PAGE = 50
CHUNK = 5000


@dataclass(frozen=True)
class DrillRow:
    track: Track
    decision: str
    default: str | None
    eligible: bool


def drill_down_ids(
    figure: Figure, *, license_class: str, use: str, after: int, limit: int
) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(drill_down_sql(figure), [license_class, use, after, limit])
        return [row[0] for row in cursor.fetchall()]


def drill_down_rows(
    figure: Figure, *, license_class: str, use: str, after: int = 0, limit: int = PAGE
) -> list[DrillRow]:
    """Up to ``limit`` tracks behind one cell after track id ``after``, with
    their artist, label and answer for the use."""
    ids = drill_down_ids(
        figure, license_class=license_class, use=use, after=after, limit=limit
    )
    return _drill_rows(ids, use)


def _drill_rows(ids: list[int], use: str) -> list[DrillRow]:
    tracks = Track.objects.select_related("artist", "label").in_bulk(ids)
    with connection.cursor() as cursor:
        placeholders = ", ".join(["%s"] * len(ids)) or "NULL"
        cursor.execute(
            f"SELECT tc.track_id, tc.decision, d.decision, tc.eligible FROM {FROM_SQL} "  # noqa: S608 - model tables, placeholders only
            f"WHERE tc.use = %s AND tc.track_id IN ({placeholders})",
            [use, *ids],
        )
        answers = {row[0]: row[1:] for row in cursor.fetchall()}
    return [
        DrillRow(tracks[pk], answers[pk][0], answers[pk][1], bool(answers[pk][2]))
        for pk in ids
        if pk in tracks and pk in answers
    ]


def answer_words(decision: str, default: str | None) -> str:
    if decision:
        return "Yes on the track" if decision == "granted" else "No on the track"
    if default:
        return "Yes by default" if default == "granted" else "No by default"
    return "No answer"


@dataclass(frozen=True)
class LedgerQuery:
    """The ledger search's filters, already checked by ``LedgerSearchForm``."""

    artist_id: int | None = None
    track_id: int | None = None
    use: str = ""
    source: str = ""
    since: date | None = None
    until: date | None = None

    def queryset(self) -> QuerySet[LedgerEntry]:
        rows = LedgerEntry.objects.all()
        if self.artist_id is not None:
            rows = rows.filter(track__artist_id=self.artist_id)
        if self.track_id is not None:
            rows = rows.filter(track_id=self.track_id)
        if self.use:
            rows = rows.filter(use=self.use)
        if self.source:
            rows = rows.filter(source=self.source)
        # Whole days in UTC, as moments: the index on created_at serves them.
        if self.since:
            rows = rows.filter(created_at__gte=_midnight(self.since))
        if self.until:
            rows = rows.filter(created_at__lt=_midnight(self.until + timedelta(days=1)))
        return rows


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def ledger_page(query: LedgerQuery, *, before: int | None = None, limit: int = PAGE):
    """Newest first, ``limit`` rows with an id below ``before``."""
    rows = query.queryset().select_related("track", "track__artist", "actor")
    if before is not None:
        rows = rows.filter(pk__lt=before)
    return list(rows.order_by("-pk")[:limit])


LEDGER_COLUMNS = [
    ("id", "id"),
    ("created_at", "created_at"),
    ("track", "track__public_id"),
    ("isrc", "track__isrc"),
    ("title", "track__title"),
    ("artist", "track__artist__email"),
    ("license_class", "track__license_class"),
    ("use", "use"),
    ("old_state", "old_state"),
    ("new_state", "new_state"),
    ("old_eligible", "old_eligible"),
    ("new_eligible", "new_eligible"),
    ("source", "source"),
    ("actor", "actor__email"),
    ("policy_version", "policy_version"),
    ("consent_version", "consent_version"),
    ("entry_hash", "entry_hash"),
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _snapshot_chunks(chunks: Iterator[list]) -> Iterator[list]:
    """Run ``chunks`` inside one transaction that sees one snapshot
    (REPEATABLE READ on PostgreSQL; SQLite's transactions already do)."""
    with one_snapshot():
        yield from chunks


def csv_lines(header: list[str], chunks: Iterator[list]) -> Iterator[str]:
    """CSV text for a ``StreamingHttpResponse``: the header, then one piece
    of text per chunk of rows (one write to the client per chunk, not per
    row)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for chunk in _snapshot_chunks(chunks):
        yield "".join(writer.writerow(row) for row in chunk)


def ledger_csv_chunks(query: LedgerQuery) -> Iterator[list]:
    """Every row the search finds, by id, ``CHUNK`` at a time (keyset)."""
    fields = [name for _, name in LEDGER_COLUMNS]
    after = 0
    while True:
        rows = list(
            query.queryset()
            .filter(pk__gt=after)
            .order_by("pk")
            .values_list(*fields)[:CHUNK]
        )
        if not rows:
            return
        after = rows[-1][0]
        yield [[_csv_value(value) for value in row] for row in rows]


def drill_down_csv_chunks(
    figure: Figure, *, license_class: str, use: str
) -> Iterator[list]:
    after = 0
    while True:
        ids = drill_down_ids(
            figure, license_class=license_class, use=use, after=after, limit=CHUNK
        )
        if not ids:
            return
        after = ids[-1]
        yield [
            [
                row.track.public_id,
                row.track.isrc or "",
                row.track.title,
                row.track.artist.email,
                row.track.label.name if row.track.label else "",
                use,
                answer_words(row.decision, row.default),
                "yes" if row.eligible else "no",
            ]
            for row in _drill_rows(ids, use)
        ]


DRILL_DOWN_COLUMNS = [
    "track",
    "isrc",
    "title",
    "artist",
    "label",
    "use",
    "answer",
    "eligible",
]


def _csv_value(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is None:
        return ""
    return value
