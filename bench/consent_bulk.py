"""Bulk change of 10,000 tracks on PostgreSQL (issue 4).

Ledger rows, the receipt and the job's progress included, in 500-track
transactions as the background task runs it. Baseline, same run: one
set-based UPDATE plus one INSERT … SELECT writing the bare state change and
ledger-shaped rows (rolled back). Goal: under 4x the baseline.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench.catalog_list import OWNER, ensure_catalogue  # noqa: E402

COUNT = 10_000
USE = "ai-inference"


def main() -> None:
    ensure_catalogue()
    common.setup_django()
    from django.db import connection, transaction

    from accounts.models import User
    from consent.ledger import verify_chains
    from consent.models import BulkJob, TrackConsent
    from consent.services import bulk_job_run, new_request_id

    owner = User.objects.get(email=OWNER)
    rows = list(
        TrackConsent.objects.filter(artist=owner, use=USE, license_class="independent")
        .order_by("track_id")
        .values_list("track_id", "decision")[:COUNT]
    )
    track_ids = [track_id for track_id, _ in rows]
    granted = sum(1 for _, decision in rows if decision == "granted")
    state = "denied" if granted > len(rows) / 2 else "granted"

    # Baseline: the bare state change and ledger rows, set-based, committed
    # (into a copy of the ledger table), then the decisions are put back.
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_ledger "
            "(LIKE consent_ledgerentry INCLUDING ALL)"
        )
        cursor.execute("TRUNCATE bench_ledger")
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE consent_trackconsent SET decision = %s "
            "WHERE use = %s AND track_id = ANY(%s)",
            [state, USE, track_ids],
        )
        cursor.execute(
            "INSERT INTO bench_ledger (track_id, consent_version, use, old_state, "
            "new_state, old_eligible, new_eligible, actor_id, source, created_at, "
            "policy_version, request_id, note, prev_hash, entry_hash) "
            "SELECT tc.track_id, t.consent_version + 1, tc.use, 'default', %s, "
            "FALSE, TRUE, %s, 'bulk', now(), 1, 'bench', '', '', md5(t.public_id) "
            "FROM consent_trackconsent tc JOIN catalog_track t ON t.id = tc.track_id "
            "WHERE tc.use = %s AND tc.track_id = ANY(%s)",
            [state, owner.pk, USE, track_ids],
        )
    baseline = time.monotonic() - started
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE consent_trackconsent AS tc SET decision = v.decision "
            "FROM unnest(%s::bigint[], %s::text[]) AS v(track_id, decision) "
            "WHERE tc.track_id = v.track_id AND tc.use = %s",
            [track_ids, [decision for _, decision in rows], USE],
        )
        cursor.execute("DROP TABLE bench_ledger")

    job = BulkJob.objects.create(
        artist=owner,
        use=USE,
        state=state,
        track_ids=track_ids,
        total=len(track_ids),
        request_id=f"bulk-{new_request_id()}",
    )
    started = time.monotonic()
    bulk_job_run(job_id=job.pk)
    elapsed = time.monotonic() - started
    job.refresh_from_db()
    report = verify_chains(track_ids=track_ids)

    print(f"bulk change of {len(track_ids):,} tracks ({USE} -> {state})")
    print(
        common.table(
            [
                ["run", "seconds", "tracks/s", "x baseline"],
                [
                    "bulk change (ledger, receipt, progress)",
                    f"{elapsed:.2f}",
                    f"{len(track_ids) / elapsed:,.0f}",
                    f"{elapsed / baseline:.2f}",
                ],
                [
                    "baseline: UPDATE + INSERT ... SELECT",
                    f"{baseline:.2f}",
                    f"{len(track_ids) / baseline:,.0f}",
                    "1.00",
                ],
            ]
        )
    )
    print(
        f"changed {job.changed}, unchanged {job.unchanged}, locked {job.locked}; "
        f"receipt covers {len(job.receipt.payload['ledger']['hashes'])} rows; "
        f"chains: {report.rows_checked} rows, {len(report.breaks)} breaks"
    )
    ok = elapsed / baseline < 4
    print(f"\ngoal (under 4x the baseline): {'MET' if ok else 'NOT MET'}")


if __name__ == "__main__":
    main()
