"""Deliveries per second to three local consumers vs Celery no-op tasks (issue 11).

Three consumers: the built-in training-data registry and two partner webhooks
served by ``bench/receiver.py`` (a real HTTP server in its own process that
verifies every signature and applies versions only forward). PostgreSQL with
1,000,000 tracks, the Redis broker, one ``celery worker --concurrency=2``
(two prefork processes, as the Procfile runs it).

Baseline, same broker, same worker, same round: N no-op tasks published while
no worker runs; the clock starts when the worker is ready and stops when the
queue is empty and nothing is unacknowledged: what one task per change costs at
the least. Measured: N real changes (one use flipped on N independent tracks
through the bulk service: ledger rows and outbox rows) while no worker runs;
the clock starts when the worker is ready and stops when every consumer holds
every track at its new version. A delivery is one track's state received by
one consumer (N changes x 3 consumers).
Goal: deliveries per second >= 2x the no-op tasks per second.
"""

import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench import propagation_kit as kit  # noqa: E402
from bench.catalog_list import ensure_catalogue  # noqa: E402

CHANGES = int(os.environ.get("BENCH_CHANGES", "20000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TIMEOUT = 300


def noop_round(logs: Path) -> float:
    from bench.tasks import noop

    kit.broker_flush()
    with noop.app.producer_pool.acquire(block=True) as producer:
        for _ in range(CHANGES):
            noop.apply_async(producer=producer)
    if kit.broker_queued()[0] != CHANGES:
        raise RuntimeError("the no-op tasks were not all queued")
    celery = kit.Celery(logs)
    try:
        celery.worker()
        started = time.monotonic()
        while kit.broker_queued() != (0, 0):
            if time.monotonic() - started > TIMEOUT:
                raise RuntimeError("the no-op tasks did not finish")
            time.sleep(0.01)
        return CHANGES / (time.monotonic() - started)
    finally:
        celery.stop()


def delivery_round(logs: Path, consumer_ids: list[int], track_ids: list[int]) -> float:
    kit.broker_flush()
    changed = kit.record_changes(track_ids)
    behind = kit.behind(consumer_ids)
    if behind < len(track_ids):
        raise RuntimeError(f"only {behind} pairs behind after the changes")
    celery = kit.Celery(logs)
    try:
        celery.worker()
        started = time.monotonic()
        while kit.behind(consumer_ids):
            if time.monotonic() - started > TIMEOUT:
                raise RuntimeError(f"deliveries did not finish:\n{celery.log_text()}")
            time.sleep(0.2)
        return changed * len(consumer_ids) / (time.monotonic() - started)
    finally:
        celery.stop()


def main() -> None:
    ensure_catalogue()
    kit.setup_django()
    from consent.models import DeliveryAttempt

    with tempfile.TemporaryDirectory() as directory, kit.three_consumers() as ready:
        logs = Path(directory)
        consumers, base = ready
        consumer_ids = [c.pk for c in consumers]
        ids = kit.changeable_tracks(CHANGES * ROUNDS)
        noops, deliveries = [], []
        for number in range(ROUNDS):
            noops.append(noop_round(logs))
            since = DeliveryAttempt.objects.order_by("-pk").values_list("pk", flat=True)
            since = since.first() or 0
            chunk = ids[number * CHANGES : (number + 1) * CHANGES]
            deliveries.append(delivery_round(logs, consumer_ids, chunk))
            failed = DeliveryAttempt.objects.filter(pk__gt=since).exclude(
                outcome="delivered"
            )
            requests = DeliveryAttempt.objects.filter(pk__gt=since).count()
            print(
                f"round {number + 1}: no-op {noops[-1]:,.0f} tasks/s, "
                f"deliveries {deliveries[-1]:,.0f}/s ({CHANGES:,} changes x "
                f"{len(consumer_ids)} consumers, {requests} attempts, "
                f"{failed.count()} not delivered), ratio "
                f"{deliveries[-1] / noops[-1]:.2f}",
                flush=True,
            )
        stats = kit.receiver_stats(base)
    ratios = [d / n for d, n in zip(deliveries, noops, strict=True)]
    print(
        common.table(
            [
                ["run", "per second (median)"],
                ["baseline: Celery no-op tasks", f"{median(noops):,.0f}"],
                ["deliveries (track x consumer)", f"{median(deliveries):,.0f}"],
            ]
        )
    )
    print(f"receiver: {stats}")
    ratio = median(ratios)
    each = ", ".join(f"{r:.2f}" for r in ratios)
    print(
        f"\ndeliveries / no-op tasks: {ratio:.2f}x (per round {each})"
        f"\ngoal (>= 2x the no-op task rate): {'MET' if ratio >= 2 else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
