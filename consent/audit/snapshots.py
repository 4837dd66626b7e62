"""Computing the audit's figures in the background, and reading them back.

``audit_figures_refresh`` (a worker, by beat every few minutes) reads every
figure from one REPEATABLE READ snapshot of the database: the side-by-side
counts, what the platform's own AI (the training-data registry) may use, and
the ledger's changes per day since the previous refresh (the days before are
kept). The pages read the newest ``AuditSnapshot`` and say "as of" when.
"""

import time
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.utils import timezone

from consent.audit.figures import (
    PLATFORM_SQL,
    SIDE_BY_SIDE_SQL,
    cell_key,
    side_by_side_rows,
    timeline_sql,
)
from consent.db import one_snapshot
from consent.models import AuditDay, AuditSnapshot, Consumer, Partner
from consent.partners.acknowledgements import withdrawals_overdue

KEEP_SNAPSHOTS = 48
# A ledger row's time is taken before its transaction commits: days are
# recomputed from this long before the previous refresh, so a row committed
# just after a refresh is never left out of its day.
RECOUNT_MARGIN = timedelta(days=1)
REFRESH_LOCK = 0x52454641  # "REFA": one refresh at a time (PostgreSQL)


def _rows(sql: str, params: list | None = None) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def audit_figures_refresh(*, triggered_by: str = "beat") -> AuditSnapshot | None:
    """Read every audit figure from one snapshot and store them; ``None``
    when another refresh is running (PostgreSQL) — its figures will do."""
    started = time.monotonic()
    with one_snapshot():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [REFRESH_LOCK])
                if not cursor.fetchone()[0]:
                    return None
        as_of = timezone.now()
        cells = side_by_side_rows(_rows(SIDE_BY_SIDE_SQL))
        platform = {
            cell_key(row["license_class"], row["use"]): int(row["eligible"] or 0)
            for row in _rows(PLATFORM_SQL)
        }
        registry = Consumer.objects.filter(kind=Consumer.Kind.REGISTRY).first()
        # Overdue acknowledgements per partner: a scan of every withdrawal
        # since the partner started, seconds on a large ledger, so here and
        # not per page view.
        overdue = {
            str(partner.pk): withdrawals_overdue(partner, as_of).count()
            for partner in Partner.objects.all()
        }
        previous = AuditSnapshot.objects.order_by("-created_at").first()
        _recount_days(since=previous.created_at - RECOUNT_MARGIN if previous else None)
        snapshot = AuditSnapshot.objects.create(
            created_at=as_of,
            triggered_by=triggered_by,
            duration_ms=round((time.monotonic() - started) * 1000),
            figures={
                "side_by_side": cells,
                "platform": platform,
                "partners_overdue": overdue,
                "platform_consumer": {
                    "name": registry.name,
                    "uses": list(registry.uses),
                    "status": registry.status,
                }
                if registry
                else None,
            },
        )
        stale = AuditSnapshot.objects.order_by("-created_at").values_list("pk")[
            KEEP_SNAPSHOTS:
        ]
        AuditSnapshot.objects.filter(pk__in=list(stale)).delete()
    return snapshot


def _recount_days(*, since: datetime | None) -> None:
    """Replace the daily counts from ``since``'s day on (every day when
    ``None``) with the ledger's."""
    if since is None:
        first = datetime(1970, 1, 1, tzinfo=UTC)
    else:
        day = since.astimezone(UTC).date()
        first = datetime(day.year, day.month, day.day, tzinfo=UTC)
    AuditDay.objects.filter(day__gte=first.date()).delete()
    AuditDay.objects.bulk_create(
        [
            AuditDay(
                day=_as_date(row["day"]),
                license_class=row["license_class"],
                use=row["use"],
                grants=row["grants"] or 0,
                denials=row["denials"] or 0,
                became_eligible=row["became_eligible"] or 0,
                stopped_eligible=row["stopped_eligible"] or 0,
            )
            for row in _rows(
                timeline_sql(connection.vendor),
                [connection.ops.adapt_datetimefield_value(first)],
            )
        ],
        batch_size=2000,
    )


def _as_date(value):
    return value if not isinstance(value, str) else datetime.fromisoformat(value).date()


def audit_snapshot_latest() -> AuditSnapshot | None:
    """The newest figures (one index probe)."""
    return AuditSnapshot.objects.order_by("-created_at").first()


def audit_figures_current() -> tuple[AuditSnapshot | None, dict]:
    """The newest snapshot and its figures; with none yet, a worker is asked
    to compute them (at most once a minute per process) and the figures are
    empty."""
    snapshot = audit_snapshot_latest()
    if snapshot is None:
        from config.doorbell import ring_at_most_every
        from consent.tasks import refresh_audit_figures

        ring_at_most_every(60, refresh_audit_figures, "page")
        return None, {}
    return snapshot, snapshot.figures
