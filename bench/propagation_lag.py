"""Lag from commit to a consumer's 2xx at a steady 100 changes/s (issue 11).

A steady 100 changes per second for 30 s, each a real change made by the
service the track list's switch calls (``consent_set``: the PostgreSQL switch
function writes the ledger row, receipt and outbox row; the doorbell rings
after commit), from this process (``BENCH_DRIVER=http`` sends them through
gunicorn with 4 workers instead: on two CPUs the web tier then takes the CPU
the workers need and cannot hold 100/s). One ``celery worker
--concurrency=4`` and ``celery beat``, as the Procfile runs them, deliver to
the three consumers (the registry and two partner webhooks served by
``bench/receiver.py``, which verifies every signature) and e-mail each
receipt. PostgreSQL with 1,000,000 tracks, Redis broker.

The lag is what Refrain records on each successful delivery: from the oldest
change in the batch being committed to the consumer's 2xx. It is counted once
per track delivered (every track of a batch gets the batch's lag, the oldest
change's: an upper bound for the others).
Goal: p95 < 1 s.
"""

import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench import propagation_kit as kit  # noqa: E402
from bench.catalog_list import OWNER, ensure_catalogue  # noqa: E402

RATE = float(os.environ.get("BENCH_RATE", "100"))  # changes per second
# "service": the changes are made in this process by the service the switch
# view calls (``consent_set``: the PostgreSQL switch function, ledger row,
# receipt, outbox row, doorbell), so the two CPUs are left to the workers and
# the database; "http": through gunicorn, as artists' browsers send them.
DRIVER = os.environ.get("BENCH_DRIVER", "service")
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
THREADS = 32
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "4"))  # as the Procfile
SETTLE = 60  # seconds at most for the last deliveries after the stream


def stream(base: str, cookie: str, csrf: str, tracks: list[tuple[str, str]]) -> dict:
    """POST one switch every 1/RATE s (each to the opposite of the track's
    state) from THREADS threads; returns counts and the achieved rate."""
    import urllib3

    pool = urllib3.HTTPConnectionPool(
        "127.0.0.1", int(base.rsplit(":", 1)[1]), maxsize=THREADS, retries=False
    )
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": cookie,
        "X-CSRFToken": csrf,
        "HX-Request": "true",
        "Referer": f"{base}/tracks/",
    }
    total = int(RATE * SECONDS)
    state = {public_id: current for public_id, current in tracks}
    order = [public_id for public_id, _ in tracks]
    lock = threading.Lock()
    counts = {"sent": 0, "ok": 0, "failed": 0, "late": 0}
    started = time.monotonic() + 0.5

    def run(thread: int) -> None:
        for i in range(thread, total, THREADS):
            at = started + i / RATE
            wait = at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            elif wait < -0.05:
                with lock:
                    counts["late"] += 1
            public_id = order[i % len(order)]
            with lock:
                new = "denied" if state[public_id] == "granted" else "granted"
                state[public_id] = new
            body = f"set={public_id}%7Cai-training%7C{new}"
            response = pool.request(
                "POST", "/tracks/switch/", body=body, headers=headers
            )
            with lock:
                counts["sent"] += 1
                counts["ok" if response.status == 200 else "failed"] += 1

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts["rate"] = counts["sent"] / (time.monotonic() - started)
    return counts


def stream_service(tracks: list[tuple[str, str]]) -> dict:
    """One change every 1/RATE s through ``consent_set`` (the switch view's
    service), each to the opposite of the track's state."""
    from accounts.models import User
    from consent.services import consent_set

    owner = User.objects.get(email=OWNER)
    state = dict(tracks)
    order = [public_id for public_id, _ in tracks]
    total = int(RATE * SECONDS)
    counts = {"sent": 0, "ok": 0, "failed": 0, "late": 0}
    started = time.monotonic() + 0.2
    for i in range(total):
        wait = started + i / RATE - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        elif wait < -0.05:
            counts["late"] += 1
        public_id = order[i % len(order)]
        new = "denied" if state[public_id] == "granted" else "granted"
        state[public_id] = new
        result = consent_set(
            owner=owner, public_id=public_id, use="ai-training", state=new,
            actor=owner, source="web",
        )  # fmt: skip
        counts["sent"] += 1
        counts["ok" if result.changed else "failed"] += 1
    counts["rate"] = counts["sent"] / (time.monotonic() - started)
    return counts


def main() -> None:
    ensure_catalogue()
    kit.setup_django()
    from django.middleware.csrf import _get_new_csrf_string
    from django.utils import timezone

    from catalog.models import Track
    from consent.models import DeliveryAttempt, TrackConsent

    tracks = list(
        Track.objects.filter(artist__email=OWNER, license_class="independent")
        .order_by("?")
        .values_list("public_id", "pk")[:1000]
    )
    decided = dict(
        TrackConsent.objects.filter(
            track_id__in=[pk for _, pk in tracks], use="ai-training"
        ).values_list("track_id", "decision")
    )
    tracks_state = [(public_id, decided.get(pk, "")) for public_id, pk in tracks]
    csrf = _get_new_csrf_string()
    cookie = common.session_cookie_for(OWNER) + f"; csrftoken={csrf}"
    with (
        tempfile.TemporaryDirectory() as directory,
        kit.three_consumers() as (consumers, receiver_base),
    ):
        consumer_ids = [c.pk for c in consumers]
        kit.broker_flush()
        celery = kit.Celery(Path(directory))
        try:
            celery.worker(concurrency=CONCURRENCY)
            celery.beat()
            since = timezone.now()
            if DRIVER == "http":
                with common.gunicorn(workers=4) as base:
                    since = timezone.now()
                    counts = stream(base, cookie, csrf, tracks_state)
            else:
                counts = stream_service(tracks_state)
            ended = time.monotonic()
            while kit.behind(consumer_ids):
                if time.monotonic() - ended > SETTLE:
                    raise RuntimeError(
                        f"not delivered {SETTLE}s after the stream:\n"
                        f"{celery.log_text()[-3000:]}"
                    )
                time.sleep(0.2)
            settled = time.monotonic() - ended
            rss = celery.rss_mb()
        finally:
            celery.stop()
            if os.environ.get("BENCH_LOGS"):  # keep the workers' logs
                shutil.copytree(directory, os.environ["BENCH_LOGS"], dirs_exist_ok=True)
        stats = kit.receiver_stats(receiver_base)
    attempts = list(
        DeliveryAttempt.objects.filter(started_at__gte=since).values_list(
            "consumer__name", "outcome", "lag_ms", "tracks"
        )
    )
    delivered = [
        (name, lag, n)
        for name, outcome, lag, n in attempts
        if outcome == "delivered" and lag is not None
    ]
    per_track = [lag for _, lag, n in delivered for _ in range(n)]
    per_attempt = [lag for _, lag, _ in delivered]
    rows = [["consumer", "attempts", "tracks", "p50 ms", "p95 ms", "max ms"]]
    for consumer in consumers:
        mine = [
            lag for name, lag, n in delivered if name == consumer.name for _ in range(n)
        ]
        rows.append(
            [
                consumer.name,
                str(sum(1 for name, _, _ in delivered if name == consumer.name)),
                str(len(mine)),
                f"{kit.percentile(mine, 0.5):.0f}",
                f"{kit.percentile(mine, 0.95):.0f}",
                f"{max(mine) if mine else float('nan'):.0f}",
            ]
        )
    print(common.table(rows))
    failed = sum(1 for _, outcome, _, _ in attempts if outcome != "delivered")
    p95 = kit.percentile(per_track, 0.95)
    print(
        f"\nstream ({DRIVER}): {counts['sent']:,} switches at {counts['rate']:.1f}/s "
        f"({counts['ok']:,} answered 200, {counts['failed']} not, "
        f"{counts['late']} sent > 50 ms late); all delivered {settled:.1f}s after "
        f"the last; {failed} attempts not delivered; worker RSS {rss:.0f} MB; "
        f"receiver {stats['statuses']}"
        f"\nlag per track delivered: p50 {kit.percentile(per_track, 0.5):.0f} ms, "
        f"p95 {p95:.0f} ms, p99 {kit.percentile(per_track, 0.99):.0f} ms; "
        f"per attempt: p95 {kit.percentile(per_attempt, 0.95):.0f} ms"
        f"\ngoal (p95 < 1 s at {RATE:.0f} changes/s): "
        f"{'MET' if p95 < 1000 and counts['failed'] == 0 else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
