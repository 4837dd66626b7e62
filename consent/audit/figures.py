"""The audit's figures, each defined once: a SQL condition over one consent
row (``tc``, a track × use) and its artist's default for the use (``d``).

The same condition is counted by the side-by-side query
(``SUM(CASE WHEN … THEN 1 ELSE 0 END)``), selects the rows of a drill-down
(``WHERE …``), and is printed on the "how" page as written, so anyone with
database access can run what the pages run.
"""

from dataclasses import dataclass

from catalog.models import LicenseClass, Track
from consent.models import (
    ArtistDefault,
    Decision,
    LedgerEntry,
    RegistryEntry,
    State,
    TrackConsent,
)
from consent.uses import USE_ORDER

GRANTED, DENIED = Decision.GRANTED.value, Decision.DENIED.value

FROM_SQL = (
    f"{TrackConsent._meta.db_table} tc "
    f"LEFT JOIN {ArtistDefault._meta.db_table} d "
    "ON d.artist_id = tc.artist_id AND d.use = tc.use"
)


@dataclass(frozen=True)
class Figure:
    key: str
    label: str  # the column's heading
    about: str  # what it counts, in one sentence
    condition: str  # SQL over ``tc`` and ``d``
    counted: bool = True  # counted per (class, use) by ``SIDE_BY_SIDE_SQL``


FIGURES: tuple[Figure, ...] = (
    Figure(
        "tracks",
        "Tracks",
        "Every track of the class (one consent row per track and use).",
        "1 = 1",
        counted=False,
    ),
    Figure(
        "granted",
        "Yes on the track",
        "The artist said yes to this use of this track.",
        f"tc.decision = '{GRANTED}'",
    ),
    Figure(
        "denied",
        "No on the track",
        "The artist said no to this use of this track.",
        f"tc.decision = '{DENIED}'",
    ),
    Figure(
        "default_granted",
        "Yes by default",
        "No answer on the track; the artist's default for the use is yes.",
        f"tc.decision = '' AND d.decision = '{GRANTED}'",
    ),
    Figure(
        "default_denied",
        "No by default",
        "No answer on the track; the artist's default for the use is no.",
        f"tc.decision = '' AND d.decision = '{DENIED}'",
    ),
    Figure(
        "no_answer",
        "No answer",
        "Neither the track nor the artist's default says yes or no.",
        "tc.decision = '' AND d.decision IS NULL",
    ),
    Figure(
        "eligible",
        "Eligible",
        "May be used for this use now: the stored eligibility every consumer "
        "and AI partner is told.",
        "tc.eligible",
    ),
    Figure(
        "eligible_without_grant",
        "Eligible without a grant",
        "Eligible although nobody said yes: neither the track nor the "
        "artist's default is yes.",
        f"tc.eligible AND tc.decision <> '{GRANTED}' "
        f"AND NOT (tc.decision = '' AND COALESCE(d.decision, '') = '{GRANTED}')",
    ),
)
FIGURE_BY_KEY = {figure.key: figure for figure in FIGURES}
COUNTED = [figure for figure in FIGURES if figure.counted]

SIDE_BY_SIDE_SQL = (
    "SELECT tc.license_class, tc.use, COUNT(*) AS tracks, "  # noqa: S608 - model tables, fixed conditions
    "COUNT(DISTINCT tc.artist_id) AS artists, "
    + ", ".join(
        f"SUM(CASE WHEN {figure.condition} THEN 1 ELSE 0 END) AS {figure.key}"
        for figure in COUNTED
    )
    + f" FROM {FROM_SQL} GROUP BY tc.license_class, tc.use"
)

PLATFORM_SQL = (
    "SELECT t.license_class, r.use, "  # noqa: S608 - model tables, fixed conditions
    "SUM(CASE WHEN r.eligible THEN 1 ELSE 0 END) AS eligible "
    f"FROM {RegistryEntry._meta.db_table} r "
    f"JOIN {Track._meta.db_table} t ON t.id = r.track_id "
    "GROUP BY t.license_class, r.use"
)


def drill_down_sql(figure: Figure) -> str:
    """The tracks behind one cell, ``page`` at a time after a track id:
    parameters (licence class, use, after track id, limit)."""
    return (
        f"SELECT tc.track_id FROM {FROM_SQL} "  # noqa: S608 - model tables, fixed conditions
        f"WHERE tc.license_class = %s AND tc.use = %s AND ({figure.condition}) "
        "AND tc.track_id > %s ORDER BY tc.track_id LIMIT %s"
    )


def day_sql(vendor: str) -> str:
    """A ledger row's day in UTC, as the database at hand writes it."""
    if vendor == "postgresql":
        return "CAST(l.created_at AT TIME ZONE 'UTC' AS DATE)"
    return "DATE(l.created_at)"  # SQLite stores UTC text


def timeline_sql(vendor: str) -> str:
    """Changes per day, class (the track's today) and use, from a day on:
    one parameter, the first moment counted."""
    granted, denied = State.GRANTED.value, State.DENIED.value
    return (
        f"SELECT {day_sql(vendor)} AS day, t.license_class, l.use, "  # noqa: S608 - model tables, fixed conditions
        f"SUM(CASE WHEN l.new_state = '{granted}' AND l.old_state <> '{granted}' "
        "THEN 1 ELSE 0 END) AS grants, "
        f"SUM(CASE WHEN l.new_state = '{denied}' AND l.old_state <> '{denied}' "
        "THEN 1 ELSE 0 END) AS denials, "
        "SUM(CASE WHEN l.new_eligible AND NOT l.old_eligible THEN 1 ELSE 0 END) "
        "AS became_eligible, "
        "SUM(CASE WHEN l.old_eligible AND NOT l.new_eligible THEN 1 ELSE 0 END) "
        "AS stopped_eligible "
        f"FROM {LedgerEntry._meta.db_table} l "
        f"JOIN {Track._meta.db_table} t ON t.id = l.track_id "
        "WHERE l.created_at >= %s GROUP BY 1, 2, 3"
    )


CLASSES: list[tuple[str, str]] = [
    (value, str(label)) for value, label in LicenseClass.choices
]


def cell_key(license_class: str, use: str) -> str:
    return f"{license_class}:{use}"


def empty_cell() -> dict[str, int]:
    return {"tracks": 0, "artists": 0, **{figure.key: 0 for figure in COUNTED}}


def side_by_side_rows(rows: list[dict]) -> dict[str, dict[str, int]]:
    """``{"class:use": {figure: n}}`` for every class and use, zeros where
    the query found no row."""
    cells = {
        cell_key(cls, use): empty_cell() for cls, _ in CLASSES for use in USE_ORDER
    }
    for row in rows:
        key = cell_key(row["license_class"], row["use"])
        if key in cells:
            cells[key] = {name: int(row.get(name) or 0) for name in cells[key]}
    return cells


def percent(part: int, whole: int) -> int | None:
    """``part`` of ``whole`` as a whole percentage (None when ``whole`` is 0);
    never rounds a non-zero part to 0 or a part short of the whole to 100."""
    if not whole:
        return None
    value = round(100 * part / whole)
    if part and value == 0:
        return 1
    if part < whole and value == 100:
        return 99
    return value
