"""Drain of a 100,000-change backlog after a consumer outage (issue 11).

The three consumers (the registry and two partner webhooks served by
``bench/receiver.py``); partner 1's endpoint answers 503 while 100,000 tracks
change, so its rows pile up while the other two keep up (real changes: one use
flipped on each track through the bulk service, one transaction per artist and
state). Then the endpoint recovers and the clock runs until partner 1 holds
every track at its new version. One ``celery worker --concurrency=4`` and
``celery beat``, as the Procfile runs them; the retry schedule and the probe
of a failing endpoint shortened to seconds
(``REFRAIN_WEBHOOK_RETRY_SCHEDULE=1,2,4,8,16``,
``REFRAIN_WEBHOOK_PROBE_SECONDS=2``) so the drain is measured, not the wait.
The workers' resident memory is sampled every second; their logs are searched
for lock timeouts, deadlocks and database errors.
Goal: minutes, no lock timeouts, flat memory.
"""

import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench import propagation_kit as kit  # noqa: E402
from bench.catalog_list import ensure_catalogue  # noqa: E402

BACKLOG = 100_000
CHUNK = 5_000
TIMEOUT = 15 * 60
TROUBLE = re.compile(
    r"lock timeout|LockNotAvailable|deadlock|OperationalError|Traceback", re.I
)
WORKER = {
    "REFRAIN_WEBHOOK_RETRY_SCHEDULE": "1,2,4,8,16",
    "REFRAIN_WEBHOOK_PROBE_SECONDS": "2",
}


def wait(condition, what: str, celery, samples: list | None = None) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > TIMEOUT:
            raise RuntimeError(
                f"{what}: not within {TIMEOUT}s\n{celery.log_text()[-3000:]}"
            )
        if samples is not None:
            samples.append((time.monotonic() - started, celery.rss_mb()))
        time.sleep(1)
    return time.monotonic() - started


def main() -> None:
    ensure_catalogue()
    kit.setup_django()
    from consent.models import DeliveryAttempt, SyncState

    with tempfile.TemporaryDirectory() as directory, kit.three_consumers() as ready:
        consumers, base = ready
        registry, down, up = consumers
        ids = kit.changeable_tracks(BACKLOG)
        kit.broker_flush()
        before = DeliveryAttempt.objects.order_by("-pk").values_list("pk", flat=True)
        before = before.first() or 0
        celery = kit.Celery(Path(directory), **WORKER)
        try:
            celery.worker(concurrency=4)
            celery.beat()
            kit.receiver_outage(base, 0, 503)
            started = time.monotonic()
            for start in range(0, BACKLOG, CHUNK):
                kit.record_changes(ids[start : start + CHUNK])
            recorded = time.monotonic() - started
            others = wait(
                lambda: kit.behind([registry.pk, up.pk]) == 0,
                "the other two consumers keeping up",
                celery,
            )
            backlog = kit.behind([down.pk])
            failures = DeliveryAttempt.objects.filter(
                consumer=down, pk__gt=before
            ).count()
            kit.receiver_outage(base, 0, 0)
            first = DeliveryAttempt.objects.order_by("-pk").values_list("pk", flat=True)
            first = first.first() or 0
            samples: list[tuple[float, float]] = []
            drained = wait(
                lambda: kit.behind([down.pk]) == 0,
                "the drain",
                celery,
                samples,
            )
            logs = celery.log_text()
        finally:
            celery.stop()
        stats = kit.receiver_stats(base)
    attempts = DeliveryAttempt.objects.filter(consumer=down, pk__gt=first)
    dead = SyncState.objects.filter(consumer=down, dead_at__isnull=False).count()
    trouble = [line for line in logs.splitlines() if TROUBLE.search(line)]
    memory = [rss for _, rss in samples]
    half = len(memory) // 2
    print(
        common.table(
            [
                ["seconds into the drain", "workers' RSS MB"],
                *[
                    [f"{t:.0f}", f"{rss:.0f}"]
                    for t, rss in samples[:: max(1, len(samples) // 10)]
                ],
            ]
        )
    )
    print(
        f"\n{BACKLOG:,} changes recorded in {recorded:.1f}s; the other two consumers "
        f"caught up {others:.0f}s later; partner 1 answered 503 to {failures} "
        f"attempts meanwhile and was {backlog:,} tracks behind"
        f"\ndrained in {drained:.0f}s after the endpoint recovered: "
        f"{attempts.count()} attempts, {backlog / max(drained, 1):,.0f} tracks/s; "
        f"{dead} dead letters; receiver {stats['statuses']}"
        f"\nworkers' RSS {min(memory):.0f}-{max(memory):.0f} MB (first half max "
        f"{max(memory[:half] or memory):.0f}, second half max {max(memory[half:]):.0f})"
        f"\nlock timeouts, deadlocks or database errors in the workers' logs: "
        f"{len(trouble)}{' — ' + trouble[0] if trouble else ''}"
    )
    ok = drained < 600 and not trouble and dead == 0 and max(memory) - min(memory) < 100
    print(
        f"goal (minutes, no lock timeouts, flat memory): {'MET' if ok else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
