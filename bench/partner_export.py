"""Signed exports of the million-track catalogue: building and serving them.

The bench catalogue as seeded has almost no eligible track (independent
music is opt-in and nobody has answered), so the script works on a copy of it
(``refrain_bench_export``, made from ``refrain_bench`` as a template and
dropped at the end) whose stored answers it sets as if the independent rule
for ``genai-training`` were opt-out (every independent track not denied is
eligible: about 1,000,000 rows, the state ``consent_policy.py``'s flip leads
to) and a quarter of the artists had granted ``ai-inference`` (about
250,000): two sizes, to see that memory does not grow with the file. The
export reads only the stored answers.

Build: for each use (``BENCH_EXPORT_USES``, default ``genai-training`` and
``ai-inference``) and both formats (JSON Lines and CSV), a snapshot is made
as a request makes it (``export_for``) and built by ``export_build`` in a
process of its own started with the bench settings, as a worker would: rows
per second, and that process's resident memory before the build and at its
peak (``VmHWM``). Baseline in the same run: a plain ``COPY (SELECT …the same
eligible tracks…) TO STDOUT`` read by psycopg in this process (median of
three), as rows per second; the ratio is export rows/s / COPY rows/s.

Serve: each file downloaded three times through gunicorn (one worker, so its
memory is the one measured) with a partner key: MB/s, and the worker's
resident memory before and at its peak while sending (sampled every 10 ms).
Goal: memory flat, the build's peak under 100 MB above its start and the
worker's under 20 MB above its start, whatever the file's size.

The files go to a temporary ``REFRAIN_EXPORT_DIR``, removed at the end with
the copy of the database (its snapshots, partner and key with it); the bench
broker is emptied of the build doorbells.
"""

import hashlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench import propagation_kit as kit  # noqa: E402

PARTNER = "Bench export partner"
CLONE = "refrain_bench_export"
# The stored answers of the copy (see above), per use.
ELIGIBLE = {
    "genai-training": "license_class = 'independent' AND decision <> 'denied'",
    "ai-inference": (
        "license_class = 'independent' AND decision <> 'denied' AND artist_id % 4 = 0"
    ),
}
USES = os.environ.get("BENCH_EXPORT_USES", "genai-training,ai-inference").split(",")
FORMATS = ("jsonl", "csv")
DOWNLOADS = 3
COPY_RUNS = 3
GOAL_BUILD_GROWTH_MB = 100
GOAL_SERVE_GROWTH_MB = 20
COPY_SQL = (
    "COPY (SELECT t.public_id, t.isrc, t.consent_version "
    "FROM consent_trackconsent tc JOIN catalog_track t ON t.id = tc.track_id "
    "WHERE tc.use = %s AND tc.eligible ORDER BY tc.track_id) "
    "TO STDOUT (FORMAT csv)"
)


def status_mb(pid: int | str, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def build_in_this_process(snapshot_id: int) -> None:
    """The child's side: build one snapshot, print what it measured (JSON)."""
    common.setup_django()
    from consent.partners import export_build

    before = status_mb("self", "VmRSS")
    started = time.perf_counter()
    snapshot = export_build(snapshot_id=snapshot_id)
    seconds = time.perf_counter() - started
    if snapshot is None:
        raise SystemExit(f"snapshot {snapshot_id} was not built (locked or not due)")
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rows": snapshot.rows,
                "size": snapshot.size,
                "rss_before_mb": before,
                "peak_mb": status_mb("self", "VmHWM"),
            }
        )
    )


def snapshots_delete(uses: list[str]) -> int:
    """The bench's snapshots of these uses and their files."""
    from consent.models import ExportSnapshot
    from consent.partners import export_path

    snapshots = list(ExportSnapshot.objects.filter(use__in=uses, format__in=FORMATS))
    for snapshot in snapshots:
        if snapshot.path:
            export_path(snapshot).unlink(missing_ok=True)
        snapshot.delete()
    return len(snapshots)


def build(use: str, fmt: str) -> dict:
    """Make the snapshot as a request does, build it in a process of its own."""
    from consent.partners import export_for

    ready, snapshot = export_for(use=use, fmt=fmt)
    if ready is not None or snapshot.status != "building":
        raise RuntimeError(f"{use} {fmt}: a snapshot is ready already")
    result = subprocess.run(
        [sys.executable, __file__, "build", str(snapshot.pk)],
        cwd=common.ROOT,
        env=common.bench_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the build of {use} {fmt} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def copy_rate(use: str) -> tuple[float, int]:
    """Median rows/s of a plain COPY of the use's eligible tracks, and rows."""
    import psycopg

    rates, rows = [], 0
    with psycopg.connect(common.BENCH_DATABASE_URL, autocommit=True) as raw:
        for _ in range(COPY_RUNS):
            rows = 0
            started = time.perf_counter()
            with raw.cursor() as cursor, cursor.copy(COPY_SQL, [use]) as copy:
                for block in copy:
                    rows += bytes(block).count(b"\n")
            rates.append(rows / (time.perf_counter() - started))
    return statistics.median(rates), rows


def gunicorn_worker(base: str) -> int:
    """The pid of the single worker of the gunicorn this script started."""
    port = urlsplit(base).port
    bind = f"127.0.0.1:{port}".encode()
    found: dict[int, int] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if b"gunicorn" in cmdline and bind in cmdline:
            found[int(pid)] = int(stat.rsplit(")", 1)[1].split()[1])
    master = next(pid for pid, parent in found.items() if parent == os.getpid())
    workers = [pid for pid, parent in found.items() if parent == master]
    if len(workers) != 1:
        raise RuntimeError(f"expected one gunicorn worker, found {workers}")
    return workers[0]


def download(base: str, key: str, use: str, fmt: str, worker: int) -> dict:
    """GET the export once; seconds, bytes, and the worker's RSS meanwhile."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    peak = [status_mb(worker, "VmRSS")]
    before = peak[0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak.append(status_mb(worker, "VmRSS"))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    digest, size = hashlib.sha256(), 0
    started = time.perf_counter()
    try:
        connection.request(
            "GET",
            f"/api/v1/eligibility/export?use={use}&format={fmt}",
            headers={"Authorization": f"Bearer {key}"},
        )
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"export answered {response.status}: {response.read()}")
        while block := response.read(1 << 20):
            digest.update(block)
            size += len(block)
        seconds = time.perf_counter() - started
    finally:
        done.set()
        sampler.join()
        connection.close()
    if digest.hexdigest() != response.getheader("X-Refrain-SHA256"):
        raise RuntimeError(f"{use} {fmt}: the file does not match its SHA-256")
    return {
        "seconds": seconds,
        "size": size,
        "rss_before_mb": before,
        "rss_peak_mb": max(peak),
        "hwm_mb": status_mb(worker, "VmHWM"),
    }


def serve(built: dict[tuple[str, str], dict], key: str) -> dict:
    served = {}
    with common.gunicorn(workers=1) as base:
        worker = gunicorn_worker(base)
        for use, fmt in built:
            runs = [download(base, key, use, fmt, worker) for _ in range(DOWNLOADS)]
            served[use, fmt] = runs
            mbps = statistics.median(r["size"] / r["seconds"] / 1e6 for r in runs)
            print(
                f"  served {use} {fmt}: {mbps:.0f} MB/s, worker RSS "
                f"{runs[0]['rss_before_mb']:.0f} -> peak "
                f"{max(r['rss_peak_mb'] for r in runs):.0f} MB",
                flush=True,
            )
    return served


def report(
    built: dict, copies: dict, served: dict, first_rss: float
) -> tuple[list[list[str]], list[list[str]], bool]:
    build_rows = [
        ["export", "rows", "MB", "seconds", "rows/s", "COPY rows/s", "x COPY",
         "RSS start MB", "peak MB"],
    ]  # fmt: skip
    serve_rows = [
        ["download", "MB", "MB/s (median)", "worker RSS before MB", "peak MB",
         "growth MB"],
    ]  # fmt: skip
    ok = True
    for (use, fmt), b in built.items():
        rate = b["rows"] / b["seconds"]
        copy_rows_s, copy_rows = copies[use]
        ok &= copy_rows == b["rows"]
        ok &= b["peak_mb"] - b["rss_before_mb"] < GOAL_BUILD_GROWTH_MB
        build_rows.append(
            [f"{use} {fmt}", f"{b['rows']:,}", f"{b['size'] / 1e6:.1f}",
             f"{b['seconds']:.1f}", f"{rate:,.0f}", f"{copy_rows_s:,.0f}",
             f"{rate / copy_rows_s:.2f}", f"{b['rss_before_mb']:.0f}",
             f"{b['peak_mb']:.0f}"]
        )  # fmt: skip
        runs = served[use, fmt]
        peak = max(r["rss_peak_mb"] for r in runs)
        ok &= peak - first_rss < GOAL_SERVE_GROWTH_MB
        serve_rows.append(
            [f"{use} {fmt}", f"{runs[0]['size'] / 1e6:.1f}",
             f"{statistics.median(r['size'] / r['seconds'] / 1e6 for r in runs):.0f}",
             f"{runs[0]['rss_before_mb']:.0f}", f"{peak:.0f}",
             f"{peak - first_rss:+.1f}"]
        )  # fmt: skip
    return build_rows, serve_rows, ok


def clone_prepare() -> None:
    """The copy of the bench catalogue with the answers above; this process's
    settings, gunicorn and the builds use it from here on."""
    common.psql(f"DROP DATABASE IF EXISTS {CLONE} WITH (FORCE)")
    source = common.BENCH_DATABASE_URL.rsplit("/", 1)[-1]
    started = time.monotonic()
    common.psql(f"CREATE DATABASE {CLONE} TEMPLATE {source} STRATEGY FILE_COPY")
    for use, condition in ELIGIBLE.items():
        common.psql(
            f"UPDATE consent_trackconsent SET eligible = ({condition}) "  # noqa: S608 - constants
            f"WHERE use = '{use}'",
            CLONE,
        )
    common.psql("VACUUM ANALYZE consent_trackconsent", CLONE)
    common.BENCH_DATABASE_URL = common.BENCH_DATABASE_URL.rsplit("/", 1)[0] + (
        f"/{CLONE}"
    )
    os.environ["BENCH_DATABASE_URL"] = common.BENCH_DATABASE_URL  # the builds
    print(
        f"copy {CLONE} of {source} with its answers set in "
        f"{time.monotonic() - started:.0f}s",
        flush=True,
    )


def main() -> None:
    from bench.catalog_list import ensure_catalogue

    ensure_catalogue()
    clone_prepare()
    export_dir = Path(tempfile.mkdtemp(prefix="refrain-bench-exports-"))
    os.environ["REFRAIN_EXPORT_DIR"] = str(export_dir)  # gunicorn and builds too
    common.setup_django()
    from consent.partners import apikey_create, partner_create

    try:
        kit.broker_flush()
        snapshots_delete(USES)  # any the template had: not this run's
        partner = partner_create(name=PARTNER)
        _, key = apikey_create(
            name="bench", scope="partner", partner=partner, rate_limit=100_000
        )
        built, copies = {}, {}
        for use in USES:
            copies[use] = copy_rate(use)
            print(
                f"  COPY {use}: {copies[use][1]:,} rows, {copies[use][0]:,.0f} rows/s",
                flush=True,
            )
            for fmt in FORMATS:
                built[use, fmt] = b = build(use, fmt)
                print(
                    f"  built {use} {fmt}: {b['rows']:,} rows, "
                    f"{b['size'] / 1e6:.1f} MB in {b['seconds']:.1f}s, peak RSS "
                    f"{b['peak_mb']:.0f} MB",
                    flush=True,
                )
        served = serve(built, key)
        first_rss = min(r["rss_before_mb"] for runs in served.values() for r in runs)
        build_rows, serve_rows, ok = report(built, copies, served, first_rss)
        print("\nbuild (export_build in a process of its own; COPY: median of 3)")
        print(common.table(build_rows))
        print(
            f"\nserve (gunicorn --workers 1, {DOWNLOADS} downloads each; growth: "
            "peak over the worker's RSS before the first download)"
        )
        print(common.table(serve_rows))
        print(
            f"\ngoal (memory flat: build peak < +{GOAL_BUILD_GROWTH_MB} MB over its "
            f"start, worker < +{GOAL_SERVE_GROWTH_MB} MB, at every size; rows as "
            "COPY's): " + ("MET" if ok else "NOT MET")
        )
    finally:
        from django.db import connection

        connection.close()
        common.psql(f"DROP DATABASE IF EXISTS {CLONE} WITH (FORCE)")
        kit.broker_flush()  # the build doorbells export_for rang (no worker here)
        shutil.rmtree(export_dir, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["build"]:
        build_in_this_process(int(sys.argv[2]))
    else:
        main()
