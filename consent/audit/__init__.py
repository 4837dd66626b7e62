"""The transparency audit: figures defined once (``figures``), computed in
the background (``snapshots``), shown side by side with the parity finding
(``tables``), over time (``timeline``), and the rows behind them
(``search``). Callers import the public names from here."""

from consent.audit.figures import (
    FIGURE_BY_KEY,
    FIGURES,
    PLATFORM_SQL,
    SIDE_BY_SIDE_SQL,
    Figure,
    drill_down_sql,
    timeline_sql,
)
from consent.audit.search import (
    DRILL_DOWN_COLUMNS,
    LEDGER_COLUMNS,
    LedgerQuery,
    answer_words,
    csv_lines,
    drill_down_csv_chunks,
    drill_down_rows,
    ledger_csv_chunks,
    ledger_page,
)
from consent.audit.snapshots import (
    audit_figures_current,
    audit_figures_refresh,
    audit_snapshot_latest,
)
from consent.audit.tables import (
    FEWER,
    PUBLIC_THRESHOLD,
    parity,
    platform_ai,
    side_by_side,
)
from consent.audit.timeline import chart, timeline

__all__ = [
    "DRILL_DOWN_COLUMNS",
    "FEWER",
    "FIGURES",
    "FIGURE_BY_KEY",
    "LEDGER_COLUMNS",
    "PLATFORM_SQL",
    "PUBLIC_THRESHOLD",
    "SIDE_BY_SIDE_SQL",
    "Figure",
    "LedgerQuery",
    "answer_words",
    "audit_figures_current",
    "audit_figures_refresh",
    "audit_snapshot_latest",
    "chart",
    "csv_lines",
    "drill_down_csv_chunks",
    "drill_down_rows",
    "drill_down_sql",
    "ledger_csv_chunks",
    "ledger_page",
    "parity",
    "platform_ai",
    "side_by_side",
    "timeline",
    "timeline_sql",
]
