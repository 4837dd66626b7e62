"""The built-in consumer: the platform's training-data registry.

It is delivered to by the same runner as a partner webhook (claims, retries,
attempt log); its "request" is this write, in its own transaction. Versions
only ever move forward: a state older than the one held is ignored.
"""

from django.db import connection, transaction
from django.utils import timezone

from consent.models import RegistryEntry
from consent.propagation.payloads import TrackState

REGISTRY = RegistryEntry._meta.db_table


def registry_apply(*, states: list[TrackState]) -> int:
    """Store each (track, use) eligibility unless a newer version is held.
    Returns the number of (track, use) rows offered."""
    rows = [
        (state.track_id, use, eligible, state.consent_version)
        for state in states
        for use, eligible in state.eligible.items()
    ]
    if not rows:
        return 0
    now = timezone.now()
    if connection.vendor == "postgresql":
        # Four arrays: one short statement however many rows.
        source = (
            "SELECT v.t, v.u, v.e, v.c, %s FROM unnest(%s::bigint[], %s::text[], "
            "%s::bool[], %s::int[]) AS v(t, u, e, c)"
        )
        params = [now, *(list(column) for column in zip(*rows, strict=True))]
    else:
        source = "VALUES " + ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows))
        params = [value for row in rows for value in (*row, now)]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {REGISTRY} (track_id, use, eligible, consent_version, "  # noqa: S608 - model table, fixed fragments; values are parameters
            f"updated_at) {source} "
            "ON CONFLICT (track_id, use) DO UPDATE SET "
            "eligible = excluded.eligible, consent_version = excluded.consent_version, "
            "updated_at = excluded.updated_at "
            f"WHERE {REGISTRY}.consent_version < excluded.consent_version",
            params,
        )
    return len(rows)
