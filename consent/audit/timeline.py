"""Changes over time per licence class: grants, denials and the eligible
count at the end of each day, from the precomputed ``AuditDay`` rows, and
drawn as server-rendered SVG line charts that do not rely on colour (each
class has its own line pattern and marker, and every line is labelled)."""

from dataclasses import dataclass
from datetime import date, timedelta

from consent.audit.figures import CLASSES, cell_key
from consent.models import AuditDay

RANGES = (30, 90, 365)
DEFAULT_RANGE = 30
# Each class's look: a line pattern and a marker, so no colour is needed.
STYLES = {
    "independent": {"dash": "", "marker": "circle"},
    "label": {"dash": "6 4", "marker": "square"},
}
WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP, PAD_RIGHT = 640, 200, 56, 28, 12, 160
LABEL_GAP = 16  # the least distance between two lines' end labels


@dataclass(frozen=True)
class Series:
    license_class: str
    name: str
    values: list[int]


@dataclass(frozen=True)
class Timeline:
    days: list[date]
    grants: list[Series]
    denials: list[Series]
    eligible: list[Series]

    def rows(self):
        """One row per day (newest first) for the table beside the charts."""
        for index in range(len(self.days) - 1, -1, -1):
            yield (
                self.days[index],
                [
                    (series.values[index] for series in group)
                    for group in (self.grants, self.denials, self.eligible)
                ],
            )


def timeline(*, figures: dict, as_of: date, days: int, use: str = "") -> Timeline:
    """The ``days`` days up to ``as_of``; ``use`` one use or every use
    (the eligible count then counts track × use pairs)."""
    first = as_of - timedelta(days=days - 1)
    span = [first + timedelta(days=offset) for offset in range(days)]
    index = {day: position for position, day in enumerate(span)}
    per_class = {
        cls: {kind: [0] * days for kind in ("grants", "denials", "net")}
        for cls, _ in CLASSES
    }
    rows = AuditDay.objects.filter(day__gte=first, day__lte=as_of)
    if use:
        rows = rows.filter(use=use)
    for row in rows.values_list(
        "day",
        "license_class",
        "grants",
        "denials",
        "became_eligible",
        "stopped_eligible",
    ):
        day, cls, grants, denials, became, stopped = row
        if cls not in per_class or day not in index:
            continue
        at = index[day]
        per_class[cls]["grants"][at] += grants
        per_class[cls]["denials"][at] += denials
        per_class[cls]["net"][at] += became - stopped
    cells = figures.get("side_by_side", {})
    eligible = {}
    for cls, _ in CLASSES:
        now = sum(
            cell.get("eligible", 0)
            for key, cell in cells.items()
            if key.startswith(f"{cls}:") and (not use or key == cell_key(cls, use))
        )
        ends = [0] * days
        for at in range(days - 1, -1, -1):
            ends[at] = now
            now -= per_class[cls]["net"][at]
        eligible[cls] = ends

    def group(kind: str) -> list[Series]:
        return [
            Series(
                cls, name, eligible[cls] if kind == "eligible" else per_class[cls][kind]
            )
            for cls, name in CLASSES
        ]

    return Timeline(span, group("grants"), group("denials"), group("eligible"))


def _nice_top(value: int) -> int:
    if value <= 4:
        return 4
    step = 10 ** (len(str(value)) - 1)
    return ((value + step - 1) // step) * step


def chart(
    title: str, days: list[date], series: list[Series], *, level: bool = False
) -> dict:
    """Points, axis ticks and labels of one line chart, for
    ``consent/audit/_chart.html``."""
    top = _nice_top(max((max(s.values, default=0) for s in series), default=0))
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    count = max(len(days) - 1, 1)

    def x(at: int) -> float:
        return round(PAD_LEFT + plot_w * at / count, 1)

    def y(value: int) -> float:
        return round(PAD_TOP + plot_h * (1 - value / top), 1)

    marks = max(1, len(days) // 10)  # markers on about ten days of each line
    lines = []
    for s in series:
        points = [(x(at), y(value)) for at, value in enumerate(s.values)]
        lines.append(
            {
                "name": s.name,
                "points": " ".join(f"{px},{py}" for px, py in points),
                "markers": [
                    {
                        "x": px,
                        "y": py,
                        "sx": round(px - 3.5, 1),
                        "sy": round(py - 3.5, 1),
                    }
                    for px, py in points[::marks]
                ],
                "last": points[-1] if points else (0, 0),
                "last_value": s.values[-1] if s.values else 0,
                **STYLES.get(s.license_class, STYLES["independent"]),
            }
        )
    # End labels never overlap: from the bottom up, each at least LABEL_GAP
    # above the one below it (the dates stay clear under the plot).
    placed = float("inf")
    for line in sorted(lines, key=lambda line: -line["last"][1]):
        line["label_y"] = min(line["last"][1], placed - LABEL_GAP)
        placed = line["label_y"]
    ticks = [{"value": top * step // 4, "y": y(top * step // 4)} for step in range(5)]
    labels = [
        {"x": x(at), "text": day.strftime("%-d %b")}
        for at, day in enumerate(days)
        if at in (0, len(days) // 2, len(days) - 1)
    ]
    if level:  # a count at the end of each day: from where to where
        summary = "; ".join(
            f"{s.name}: {s.values[0]:,} at the start, {s.values[-1]:,} at the end"
            for s in series
            if s.values
        )
    else:
        summary = "; ".join(
            f"{s.name}: {sum(s.values):,} in total, most on one day {max(s.values):,}"
            for s in series
            if s.values
        )
    return {
        "title": title,
        "width": WIDTH,
        "height": HEIGHT,
        "lines": lines,
        "ticks": ticks,
        "labels": labels,
        "left": PAD_LEFT,
        "tick_x": PAD_LEFT - 6,
        "right": WIDTH - PAD_RIGHT,
        "label_x": WIDTH - PAD_RIGHT + 8,
        "date_y": HEIGHT - 8,
        "summary": summary,
    }
