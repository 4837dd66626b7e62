"""The audit's figures as the pages show them: the side-by-side table with
percentages, the parity finding, the platform's own AI; for staff (every
number, each linking to the tracks behind it) or for the public (no names,
and any count under ``PUBLIC_THRESHOLD`` shown as "fewer than 10")."""

from dataclasses import dataclass, field

from consent.audit.figures import (
    CLASSES,
    COUNTED,
    FIGURES,
    Figure,
    cell_key,
    empty_cell,
    percent,
)
from consent.policy import PUBLIC_RULE_WORDS, Policy, is_locked
from consent.uses import USE_ORDER, USES, UseInfo

PUBLIC_THRESHOLD = 10
FEWER = f"fewer than {PUBLIC_THRESHOLD}"
ARTISTS = Figure(
    "artists",
    "Artists",
    "Artists with at least one track of the class.",
    "1 = 1",
    counted=False,
)


@dataclass(frozen=True)
class Cell:
    license_class: str
    class_name: str
    count: int
    percent: int | None  # of the class's tracks; None when not shown
    words: str  # the count as the page prints it
    shown: bool = True  # False: under the public threshold


@dataclass(frozen=True)
class Row:
    figure: Figure
    cells: list[Cell]


@dataclass(frozen=True)
class UseTable:
    use: UseInfo
    rows: list[Row]


@dataclass(frozen=True)
class Parity:
    same: bool
    sentence: str
    differences: list[str] = field(default_factory=list)


def _cell(license_class: str, count: int, tracks: int, *, share: bool, public: bool):
    class_name = dict(CLASSES)[license_class]
    hidden = public and (count < PUBLIC_THRESHOLD or tracks < PUBLIC_THRESHOLD)
    if hidden:
        return Cell(license_class, class_name, count, None, FEWER, shown=False)
    return Cell(
        license_class,
        class_name,
        count,
        percent(count, tracks) if share else None,
        f"{count:,}",
    )


def side_by_side(figures: dict, *, public: bool = False) -> list[UseTable]:
    """One table per use: a row per figure, a cell per licence class."""
    cells = figures.get("side_by_side", {})
    tables = []
    for use in USE_ORDER:
        per_class = {
            cls: cells.get(cell_key(cls, use), empty_cell()) for cls, _ in CLASSES
        }
        rows = []
        for figure in (FIGURES[0], ARTISTS, *COUNTED):
            rows.append(
                Row(
                    figure,
                    [
                        _cell(
                            cls,
                            per_class[cls][figure.key],
                            per_class[cls]["tracks"],
                            share=figure.counted,
                            public=public,
                        )
                        for cls, _ in CLASSES
                    ],
                )
            )
        tables.append(UseTable(USES[use], rows))
    return tables


def outcome_words(rule: str) -> str:
    """What a rule does to content, for the parity sentence."""
    return "is never used" if is_locked(rule) else f"is used {PUBLIC_RULE_WORDS[rule]}"


def parity(policy: Policy, figures: dict, *, public: bool = False) -> Parity:
    """The one-sentence finding: are independent and label-licensed content
    under the same rule for every use, and if not, where and how, with the
    share of each class eligible although nobody said yes."""
    cells = figures.get("side_by_side", {})
    differences = []
    for use in USE_ORDER:
        rules = {cls: policy.rule(cls, use) for cls, _ in CLASSES}
        if len(set(rules.values())) == 1:
            continue
        parts = [
            f"{name.lower()} content {outcome_words(rules[cls])}"
            for cls, name in reversed(CLASSES)
        ]
        shares = []
        for cls, name in CLASSES:
            cell = cells.get(cell_key(cls, use), empty_cell())
            without = cell["eligible_without_grant"]
            if not without:
                continue
            if public and (
                without < PUBLIC_THRESHOLD or cell["tracks"] < PUBLIC_THRESHOLD
            ):
                shares.append(
                    f"{FEWER} {name.lower()} tracks are eligible without a grant"
                )
            else:
                shares.append(
                    f"{percent(without, cell['tracks'])}% of {name.lower()} tracks "
                    "are eligible without a grant"
                )
        text = f"{USES[use].name}: " + "; ".join(parts)
        if shares:
            text += " — " + "; ".join(shares)
        differences.append(text)
    if not differences:
        return Parity(
            True,
            "Independent and label-licensed content are treated the same for "
            "every use.",
        )
    count = len(differences)
    return Parity(
        False,
        "Independent and label-licensed content are treated differently for "
        f"{count} of {len(USE_ORDER)} uses:",
        differences,
    )


@dataclass(frozen=True)
class PlatformCell:
    license_class: str
    may_use: int  # what the registry holds as eligible
    eligible: int  # what the rules give now
    tracks: int

    @property
    def percent(self) -> int | None:
        return percent(self.may_use, self.tracks)

    @property
    def behind(self) -> int:
        """Changes not yet delivered to the registry (either way)."""
        return abs(self.eligible - self.may_use)


@dataclass(frozen=True)
class PlatformRow:
    use: UseInfo
    receives: bool
    cells: list[PlatformCell]

    @property
    def named_cells(self) -> list[tuple[PlatformCell, str]]:
        names = dict(CLASSES)
        return [(cell, names[cell.license_class]) for cell in self.cells]


def platform_ai(figures: dict) -> tuple[dict | None, list[PlatformRow]]:
    """The built-in consumer (the training-data registry the platform's own
    AI reads) and, per use and class, how many tracks it may use now."""
    consumer = figures.get("platform_consumer")
    cells = figures.get("side_by_side", {})
    registry = figures.get("platform", {})
    rows = []
    for use in USE_ORDER:
        row_cells = []
        for cls, _ in CLASSES:
            key = cell_key(cls, use)
            cell = cells.get(key, empty_cell())
            row_cells.append(
                PlatformCell(
                    cls, registry.get(key, 0), cell["eligible"], cell["tracks"]
                )
            )
        rows.append(
            PlatformRow(
                USES[use], bool(consumer and use in consumer["uses"]), row_cells
            )
        )
    return consumer, rows
