"""Shared pieces of the propagation benchmarks (issue 11): the three
consumers, the partner's endpoint, Celery workers and beat of the bench's own.

The three consumers are the built-in training-data registry and two partner
webhooks ("Bench partner 1" and "2") served by ``bench/receiver.py`` in a
process of its own. Every process here is started by the script and stopped
by its own pid; the bench broker (Redis database 3) belongs to the benchmarks
and is emptied at the start.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench import common

HERE = Path(__file__).resolve().parent
WEBHOOKS = 2  # + the built-in registry: three consumers
WORKER_ENV = {
    "EMAIL_URL": "dummymail://",  # receipts are e-mailed nowhere (leaves the machine)
    "REFRAIN_WEBHOOK_ALLOW_PRIVATE": "true",  # the partners are on 127.0.0.1
}


def env(**extra: str) -> dict[str, str]:
    return common.bench_env(**WORKER_ENV, **extra)


def setup_django(**extra: str) -> None:
    os.environ.update(env(**extra))
    common.setup_django()


def broker_flush() -> None:
    subprocess.run(
        ["redis-cli", "-u", common.BENCH_REDIS_URL, "FLUSHDB"],
        check=True,
        capture_output=True,
    )


def broker_queued() -> tuple[int, int]:
    """(messages waiting, messages taken but not acknowledged) on the broker."""
    import redis

    client = redis.Redis.from_url(common.BENCH_REDIS_URL)
    with client.pipeline() as pipe:
        waiting, unacked = pipe.llen("celery").hlen("unacked").execute()
    client.close()
    return waiting, unacked


@contextmanager
def receiver(secrets: list[str]):
    """``bench/receiver.py`` on a free port; yields its base URL."""
    port = common.free_port()
    process = subprocess.Popen(
        [sys.executable, str(HERE / "receiver.py"), str(port), *secrets],
        cwd=common.ROOT,
        env=env(),
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(base + "/stats", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the receiver did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        _stop(process)


def receiver_stats(base: str) -> dict:
    with urllib.request.urlopen(base + "/stats", timeout=5) as response:
        return json.loads(response.read())


def receiver_outage(base: str, hook: int, code: int) -> None:
    """Hook ``hook`` answers ``code`` from now on (0: answers normally)."""
    request = urllib.request.Request(
        f"{base}/status/{hook}?code={code}", data=b"", method="POST"
    )
    urllib.request.urlopen(request, timeout=5).read()


@contextmanager
def three_consumers():
    """The registry and two partner webhooks, active, in sync with the
    catalogue, nothing queued, and their receiver running; yields
    (consumers, the receiver's base URL)."""
    with ExitStack() as stack:
        yield consumers_ready(lambda secrets: stack.enter_context(receiver(secrets)))


def consumers_ready(base_factory):
    """The registry and two partner webhooks, active, with fresh secrets and
    nothing queued. ``base_factory(secrets)`` starts the receiver with the
    partners' secrets and returns its base URL. Returns (the consumers, the
    base URL)."""
    from django.db import connection

    from consent.models import Consumer, PropagationChange, SyncState
    from consent.propagation import consumer_create, consumer_rotate_secret
    from consent.uses import USE_ORDER

    partners = []
    for number in range(1, WEBHOOKS + 1):
        name = f"Bench partner {number}"
        consumer = Consumer.objects.filter(name=name).first()
        if consumer is None:
            consumer = consumer_create(
                name=name, url="http://127.0.0.1:9/", uses=list(USE_ORDER), actor=None
            ).consumer
        partners.append(consumer)
    # Fresh secrets each run (the old one stays valid for its grace period).
    secrets = [consumer_rotate_secret(consumer=c, actor=None).secret for c in partners]
    base = base_factory(secrets)
    for index, consumer in enumerate(partners):
        Consumer.objects.filter(pk=consumer.pk).update(
            url=f"{base}/hook/{index}",
            status=Consumer.Status.ACTIVE,
            hold_until=None,
            failing_since=None,
            delivering_until=None,
            backfill_after=None,
            backfill_since=None,
        )
    consumers = list(Consumer.objects.order_by("pk"))
    # Every consumer in sync with the catalogue (as after its backfill), and
    # nothing on its way: each script measures only its own changes.
    sync, tracks = SyncState._meta.db_table, "catalog_track"
    with connection.cursor() as cursor:
        for consumer in consumers:
            cursor.execute(
                f"INSERT INTO {sync} (consumer_id, track_id, desired_version, "  # noqa: S608 - model tables; values are parameters
                "delivered_version, attempts, last_error, lease_token) "
                f"SELECT %s, t.id, t.consent_version, t.consent_version, 0, '', '' "
                f"FROM {tracks} t ON CONFLICT (track_id, consumer_id) DO NOTHING",
                [consumer.pk],
            )
        cursor.execute(
            f"UPDATE {sync} s SET desired_version = t.consent_version, "  # noqa: S608 - model tables
            "delivered_version = t.consent_version, next_attempt_at = NULL, "
            "pending_since = NULL, dead_at = NULL, attempts = 0 "
            f"FROM {tracks} t WHERE t.id = s.track_id AND "
            "(s.next_attempt_at IS NOT NULL OR s.dead_at IS NOT NULL "
            "OR s.delivered_version <> t.consent_version)"
        )
    PropagationChange.objects.all().delete()
    Consumer.objects.exclude(pk__in=[c.pk for c in consumers]).delete()
    Consumer.objects.update(backfill_after=None, backfill_since=None)
    common.psql(f"VACUUM ANALYZE {sync}", common.BENCH_DATABASE_URL.rsplit("/", 1)[-1])
    return consumers, base


def behind(consumer_ids: list[int]) -> int:
    """Outbox rows not fanned out, plus these consumers' rows not delivered
    (due, leased, waiting for a retry, or dead-lettered). The scripts start
    with nothing pending (``consumers_ready``), so this counts their changes;
    it reads the partial indexes, never the million tracks."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM consent_propagationchange) + "
            "(SELECT count(*) FROM consent_syncstate WHERE consumer_id = ANY(%s) "
            "AND next_attempt_at IS NOT NULL) + "
            "(SELECT count(*) FROM consent_syncstate WHERE consumer_id = ANY(%s) "
            "AND dead_at IS NOT NULL)",
            [consumer_ids, consumer_ids],
        )
        return cursor.fetchone()[0]


USE = "ai-inference"  # the use the propagation benchmarks change


def changeable_tracks(count: int) -> list[int]:
    """``count`` independent tracks (no use of theirs is locked), whole
    artists' catalogues from a random artist on, so a change is a few large
    transactions (one per artist and state), as a bulk change makes them."""
    import random

    from consent.models import TrackConsent

    independent = TrackConsent.objects.filter(use=USE, license_class="independent")
    total = independent.count()
    start = random.randrange(max(1, total - count))  # noqa: S311 - not a secret
    return list(
        independent.order_by("artist_id", "track_id").values_list(
            "track_id", flat=True
        )[start : start + count]
    )


def record_changes(track_ids: list[int]) -> int:
    """Real changes: flip ``USE`` on each track, through the bulk service
    (``consent_bulk_set_chunk``: ledger rows, eligibility, outbox rows, one
    transaction per artist and new state). Returns the tracks changed."""
    from accounts.models import User
    from consent.models import TrackConsent
    from consent.services import consent_bulk_set_chunk, new_request_id

    groups: dict[tuple[int, str], list[int]] = {}
    for track_id, artist_id, decision in TrackConsent.objects.filter(
        track_id__in=track_ids, use=USE
    ).values_list("track_id", "artist_id", "decision"):
        state = "denied" if decision == "granted" else "granted"
        groups.setdefault((artist_id, state), []).append(track_id)
    artists = User.objects.in_bulk({artist_id for artist_id, _ in groups})
    changed = 0
    for (artist_id, state), ids in sorted(groups.items()):
        outcome = consent_bulk_set_chunk(
            artist=artists[artist_id], track_ids=ids, use=USE, state=state,
            actor=None, source="bulk", request_id=new_request_id(),
        )  # fmt: skip
        changed += outcome.changed
    return changed


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class Celery:
    """``celery worker`` processes (prefork, as the Procfile runs them) and,
    if asked, ``celery beat``; logs in a temporary directory."""

    def __init__(self, logs: Path, **extra: str):
        self.logs = logs
        self.env = env(**extra)
        self.processes: list[tuple[subprocess.Popen, Path]] = []

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log_path = self.logs / f"{name}-{len(self.processes)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", *args],
                cwd=common.ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append((process, log_path))
        return process

    def worker(self, concurrency: int = 2, *, wait: bool = True) -> subprocess.Popen:
        process = self._start(
            "worker",
            ["worker", f"--concurrency={concurrency}", "--loglevel=INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat",
             f"--hostname=bench{len(self.processes)}-{os.getpid()}@%h"],
        )  # fmt: skip
        if wait:
            log = self.processes[-1][1]
            deadline = time.monotonic() + 60
            while b" ready." not in log.read_bytes():
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"worker did not start:\n{self.log_text()}")
                time.sleep(0.02)
        return process

    def beat(self) -> subprocess.Popen:
        schedule = self.logs / "celerybeat-schedule"
        return self._start("beat", ["beat", "--loglevel=INFO", "-s", str(schedule)])

    def log_text(self) -> str:
        return "\n".join(path.read_text(errors="replace") for _, path in self.processes)

    def rss_mb(self) -> float:
        """Resident memory of every worker process and its children, MB."""
        total = 0
        for process, _ in self.processes:
            pids = [process.pid]
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
            if children.exists():
                pids += [int(pid) for pid in children.read_text().split()]
            for pid in pids:
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total / 1024

    def stop(self) -> None:
        for process, _ in self.processes:
            _stop(process)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-int(fraction * 1000) * len(ordered) // 1000))
    return ordered[min(rank, len(ordered)) - 1]
