"""The audit pages with 1,000,000 tracks and 5,000,000 ledger rows (issue 14).

Works on ``refrain_bench_audit``, a copy of ``refrain_bench`` (made with it as
a template, once, and kept: later runs reuse it when it has its 5,000,000
rows; ``BENCH_AUDIT_REBUILD=1`` makes it again). Drop it with
``psql -h 127.0.0.1 -U postgres -c "DROP DATABASE refrain_bench_audit WITH
(FORCE)"``. Its ledger is brought up to 5,000,000 rows with plain SQL: 20% of
the independent tracks have changes (about 25 each, numbered above the
track's newest version), over the last 400 days (more recent days denser),
every use and source, each row's old state and eligibility its use's previous
row's; hashes are random hex (the copy is never hash-verified). Then one
UPDATE sets each (track, use)'s decision and eligibility to its newest row's
(the opt-in rule: eligible iff granted, or default and the artist's default
granted) and the tracks' versions to their newest. Each run dates the copy's
partner (the demo AI lab, the only one) 365 days back
(``BENCH_AUDIT_PARTNER_DAYS``), as one onboarded a year ago: /audit/ counts
every partner's overdue acknowledgements since its start. The load average
is printed first: another process's work on this 2-CPU machine skews it all.

1. ``audit_figures_refresh(triggered_by="bench")`` in this process, twice:
   the background job's cost, the whole history then one increment.
2. gunicorn with 2 workers: ``GET /audit/`` signed in as
   ``audit-bench@example.com`` (staff, group ``auditors``, a TOTP
   authenticator enrolled, so the MFA check passes as for a deployed
   auditor), ``GET /transparency/`` anonymous, and the trivial signed-in view
   as the reference (``REFRAIN_SITE_URL``, which production settings
   require, is set to http://127.0.0.1 when unset); wrk 10 s each at 2
   connections (one request in flight per worker: the page's own latency)
   and at 16 (queueing), 30 s timeout: p50/p95/p99 (from wrk's Lua
   ``done``), req/s. Goal: p95 < 500 ms at 2 connections.
3. ``GET /audit/ledger/?format=csv`` as the auditor, through gunicorn with
   ONE worker (``--timeout 900``: the default 30 s would kill a sync worker
   mid-stream; a longer download is flagged), whole ledger then the last 60
   days (``?since=``, the search form's "From"): rows (lines less the
   header), rows/s, MB/s and the worker's RSS before and at its peak
   (``VmRSS`` every 10 ms); a plain ``COPY`` of the ledger as the reference
   for rows/s.
   Goal: peak < 50 MB above the worker's RSS before, whatever the size.
"""

import datetime as dt
import http.client
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench.catalog_list import ensure_catalogue  # noqa: E402
from bench.partner_export import gunicorn_worker, status_mb  # noqa: E402

CLONE = "refrain_bench_audit"
LEDGER_ROWS = 5_000_000
TRACKS = 1_000_000
AUDITOR = "audit-bench@example.com"
SUBSET_DAYS = 60
SECONDS = 10
CONNECTIONS = (2, 16)
GOAL_P95_MS = 500.0
GOAL_GROWTH_MB = 50.0
COPY_SQL = "COPY (SELECT * FROM consent_ledgerentry ORDER BY id) TO STDOUT (FORMAT csv)"
WORKER_TIMEOUT = 30  # gunicorn's default, as README's deploy command runs it
TIMEOUT = 30  # wrk gives up on a request after this (gunicorn would too)
# The copy's partner (the demo AI lab) dated back as if onboarded a year ago:
# /audit/ counts each partner's overdue acknowledgements since it started.
PARTNER_DAYS = int(os.environ.get("BENCH_AUDIT_PARTNER_DAYS", "365"))

# 20% of the independent tracks active, 1 + floor(Exp(25)) changes each (about
# 25.5, slightly over the rows needed; LIMIT cuts the rest). States weighted
# granted 3 : denied 2 : default 1 (the newest row of a (track, use) is its
# decision); sources weighted as changes come. Rows are inserted in time
# order, so ids follow created_at as in a real ledger.
LEDGER_SQL = """
SET work_mem = '512MB';
INSERT INTO consent_ledgerentry (track_id, consent_version, use, old_state,
  new_state, old_eligible, new_eligible, actor_id, source, created_at,
  policy_version, request_id, note, prev_hash, entry_hash)
SELECT track_id, v0 + row_number() OVER (PARTITION BY track_id ORDER BY at), use,
  coalesce(lag(new_state) OVER w, 'default'), new_state,
  coalesce(lag(new_eligible) OVER w, false), new_eligible,
  CASE WHEN source IN ('web', 'bulk', 'api', 'upload') THEN artist_id END,
  source, at, 1, '', '',
  coalesce(lag(entry_hash) OVER (PARTITION BY track_id ORDER BY at), repeat('0', 64)),
  entry_hash
FROM (
  SELECT r.*, (r.new_state = 'granted'
    OR (r.new_state = 'default' AND d.decision IS NOT DISTINCT FROM 'granted'))
    AS new_eligible
  FROM (
    SELECT t.id AS track_id, t.artist_id, t.v0,
      (ARRAY['genai-training', 'ai-training', 'ai-inference', 'data-mining'])
        [1 + floor(random() * 4)::int] AS use,
      (ARRAY['granted', 'granted', 'granted', 'denied', 'denied', 'default'])
        [1 + floor(random() * 6)::int] AS new_state,
      (ARRAY['web', 'web', 'web', 'bulk', 'bulk', 'bulk', 'api', 'policy',
             'import', 'upload', 'admin'])[1 + floor(random() * 11)::int] AS source,
      now() - interval '400 days' * power(random(), 1.25) AS at,
      md5(random()::text) || md5(random()::text) AS entry_hash
    FROM (
      SELECT c.id, c.artist_id, coalesce(m.v, 0) AS v0,
        CASE WHEN random() < 0.2 THEN 1 + floor(-ln(1 - random()) * 25)::int
             ELSE 0 END AS k
      FROM catalog_track c LEFT JOIN (
        SELECT track_id, max(consent_version) AS v
        FROM consent_ledgerentry GROUP BY track_id) m ON m.track_id = c.id
      WHERE c.license_class = 'independent'
    ) t CROSS JOIN LATERAL generate_series(1, t.k)
    LIMIT %(needed)d
  ) r LEFT JOIN consent_artistdefault d ON d.artist_id = r.artist_id AND d.use = r.use
) x
WINDOW w AS (PARTITION BY track_id, use ORDER BY at)
ORDER BY at;  -- ids in time order, as the ledger's are
UPDATE consent_trackconsent tc
SET decision = CASE h.new_state WHEN 'default' THEN '' ELSE h.new_state END,
    eligible = h.new_eligible, updated_at = h.created_at
FROM (SELECT DISTINCT ON (track_id, use) track_id, use, new_state, new_eligible,
        created_at
      FROM consent_ledgerentry ORDER BY track_id, use, consent_version DESC) h
WHERE tc.track_id = h.track_id AND tc.use = h.use
  AND tc.license_class = 'independent';
UPDATE catalog_track c SET consent_version = m.v
FROM (SELECT track_id, max(consent_version) AS v
      FROM consent_ledgerentry GROUP BY track_id) m
WHERE c.id = m.track_id AND c.consent_version < m.v;
"""

LATENCY_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d\\n", summary.requests,
    summary.duration, e.connect + e.read + e.write + e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def clone_counts() -> tuple[int, int]:
    exists = common.psql(f"SELECT 1 FROM pg_database WHERE datname = '{CLONE}'")  # noqa: S608 - constant
    if not exists:
        return 0, 0
    tracks = common.psql("SELECT count(*) FROM catalog_track", CLONE)
    ledger = common.psql("SELECT count(*) FROM consent_ledgerentry", CLONE)
    return int(tracks), int(ledger)


def clone_ensure() -> None:
    """The copy with its 5,000,000 ledger rows; this process, gunicorn and
    manage.py use it from here on."""
    ensure_catalogue()
    source = common.BENCH_DATABASE_URL.rsplit("/", 1)[-1]
    tracks, ledger = clone_counts()
    rebuild = os.environ.get("BENCH_AUDIT_REBUILD") == "1"
    fresh = rebuild or not (tracks >= TRACKS and ledger >= LEDGER_ROWS)
    if fresh:
        started = time.monotonic()
        common.psql(f"DROP DATABASE IF EXISTS {CLONE} WITH (FORCE)")
        common.psql(f"CREATE DATABASE {CLONE} TEMPLATE {source} STRATEGY FILE_COPY")
        needed = LEDGER_ROWS - int(
            common.psql("SELECT count(*) FROM consent_ledgerentry", CLONE)
        )
        common.psql(LEDGER_SQL % {"needed": needed}, CLONE)
        common.psql(
            "VACUUM ANALYZE consent_ledgerentry, consent_trackconsent, catalog_track",
            CLONE,
        )
        tracks, ledger = clone_counts()
        if ledger < LEDGER_ROWS:
            raise RuntimeError(f"{CLONE}: only {ledger:,} ledger rows were made")
        print(f"made {CLONE} from {source} in {time.monotonic() - started:.0f}s")
    common.BENCH_DATABASE_URL = common.BENCH_DATABASE_URL.rsplit("/", 1)[0] + (
        f"/{CLONE}"
    )
    os.environ["BENCH_DATABASE_URL"] = common.BENCH_DATABASE_URL
    common.manage("migrate", "--noinput")  # the feature's new tables, if any
    common.psql(
        "UPDATE consent_partner SET created_at = "  # noqa: S608 - a number
        f"now() - interval '{PARTNER_DAYS} days'",
        CLONE,
    )
    decided = common.psql(
        "SELECT string_agg(coalesce(nullif(decision, ''), 'none') || ' ' || n, ', ')"
        " FROM (SELECT decision, count(*) n FROM consent_trackconsent"
        " WHERE license_class = 'independent' GROUP BY 1 ORDER BY 1) s",
        CLONE,
    )
    print(
        f"{CLONE} ({'made now' if fresh else 'reused'}): {tracks:,} tracks, "
        f"{ledger:,} ledger rows; independent (track, use) decisions: {decided}",
        flush=True,
    )


def auditor_cookie() -> str:
    """The bench's auditor (made once in the copy) and a session for it."""
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    from accounts.services import GROUP_AUDITORS, user_ensure_verified

    user, _ = user_ensure_verified(
        email=AUDITOR,
        password=secrets.token_urlsafe(24),
        is_staff=True,
        groups=(GROUP_AUDITORS,),
    )
    if not Authenticator.objects.filter(user=user, type="totp").exists():
        TOTP.activate(user, generate_totp_secret())
    return common.session_cookie_for(AUDITOR)


def refresh_timed() -> None:
    """The first run after the copy's snapshots are deleted counts every day
    of the ledger (as the first refresh of a deployment does); the second
    only the days since the previous refresh."""
    from consent.audit import audit_figures_refresh
    from consent.models import AuditSnapshot

    AuditSnapshot.objects.all().delete()
    for run in ("first (whole history)", "second (incremental)"):
        before = status_mb("self", "VmRSS")
        started = time.perf_counter()
        snapshot = audit_figures_refresh(triggered_by="bench")
        seconds = time.perf_counter() - started
        if snapshot is None:
            raise RuntimeError("another refresh holds the lock")
        print(
            f"audit_figures_refresh, {run}: {seconds:.2f} s (RSS before "
            f"{before:.0f} MB, peak so far {status_mb('self', 'VmHWM'):.0f} MB)",
            flush=True,
        )


def check(url: str, cookie: str) -> None:
    """Refuse to time anything but a 200 at the URL itself."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"{url} answered {response.status}: {body[:300]!r}")


def wrk(url: str, cookie: str, connections: int, seconds: int, lua: Path) -> dict:
    headers = ["-H", f"Cookie: {cookie}"] if cookie else []
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", f"{TIMEOUT}s",
         "-s", str(lua), *headers, url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    line = next(x for x in output.splitlines() if x.startswith("RESULT "))
    requests, duration, errors, timeouts, p50, p95, p99 = (
        int(v) for v in line.split()[1:]
    )
    return {
        "rps": requests / (duration / 1e6),
        "requests": requests,
        "errors": f"{errors}/{timeouts}",
        "failed": errors + timeouts,
        "p50": p50 / 1000,
        "p95": p95 / 1000,
        "p99": p99 / 1000,
    }


def settle(limit: float = 120) -> None:
    """Wait until the copy runs no query and gunicorn uses no CPU: requests
    wrk left queued would otherwise be served in the next run's time."""
    deadline = time.monotonic() + limit
    quiet = 0
    while quiet < 3 and time.monotonic() < deadline:
        busy = common.psql(
            "SELECT count(*) FROM pg_stat_activity "  # noqa: S608 - constant
            f"WHERE datname = '{CLONE}' AND state = 'active'"
        )
        before = common.cpu_seconds()["gunicorn"]
        time.sleep(0.2)
        used = common.cpu_seconds()["gunicorn"] - before
        quiet = quiet + 1 if busy == "0" and used < 0.02 else 0


def pages(cookie: str, some_pk: int) -> bool:
    rows = [["page", "connections", "requests", "req/s", "p50 ms", "p95 ms",
             "p99 ms", "x trivial req/s", "errors/timeouts"]]  # fmt: skip
    ok = True
    with common.gunicorn(workers=2) as base, tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp) / "latency.lua"
        lua.write_text(LATENCY_LUA)
        urls = {
            "trivial view (signed in)": (f"{base}/bench/trivial?pk={some_pk}", cookie),
            "/audit/ (auditor)": (f"{base}/audit/", cookie),
            "/transparency/ (anonymous)": (f"{base}/transparency/", ""),
        }
        for url, with_cookie in urls.values():
            check(url, with_cookie)
            wrk(url, with_cookie, 2, 2, lua)  # warm up
            settle()
        for connections in CONNECTIONS:
            trivial = None
            for name, (url, with_cookie) in urls.items():
                r = wrk(url, with_cookie, connections, SECONDS, lua)
                settle()
                trivial = trivial or r
                print(
                    f"  {name}, {connections} connections: {r['requests']} "
                    f"requests, p95 {r['p95']:.1f} ms",
                    flush=True,
                )
                if connections == CONNECTIONS[0] and r is not trivial:
                    ok &= r["p95"] < GOAL_P95_MS and r["failed"] == 0
                rows.append(
                    [name, str(connections), str(r["requests"]), f"{r['rps']:.1f}",
                     f"{r['p50']:.1f}", f"{r['p95']:.1f}", f"{r['p99']:.1f}",
                     f"{r['rps'] / trivial['rps']:.3f}", r["errors"]]
                )  # fmt: skip
    print(
        f"\ngunicorn --workers 2, wrk 2 threads, {SECONDS} s per run (each after "
        "the previous run's queued requests are served)"
    )
    print(common.table(rows))
    print(
        f"\ngoal (/audit/ and /transparency/ p95 < {GOAL_P95_MS:.0f} ms at "
        f"{CONNECTIONS[0]} connections, no errors or timeouts): "
        + ("MET" if ok else "NOT MET")
    )
    return ok


def download(base: str, path: str, cookie: str, worker: int) -> dict:
    """GET one CSV export; lines, bytes, seconds, the worker's RSS meanwhile."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    before = status_mb(worker, "VmRSS")
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak.append(status_mb(worker, "VmRSS"))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines = size = 0
    started = time.perf_counter()
    try:
        connection.request("GET", path, headers={"Cookie": cookie})
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}: {response.read()}")
        while block := response.read(1 << 20):
            lines += block.count(b"\n")
            size += len(block)
        seconds = time.perf_counter() - started
    finally:
        done.set()
        sampler.join()
        connection.close()
    return {"rows": lines - 1, "size": size, "seconds": seconds,
            "before": before, "peak": max(peak)}  # fmt: skip


def copy_rate() -> float:
    """rows/s of a plain COPY of the whole ledger to CSV, read by psycopg."""
    import psycopg

    rows = 0
    started = time.perf_counter()
    with (
        psycopg.connect(common.BENCH_DATABASE_URL, autocommit=True) as raw,
        raw.cursor() as cursor,
        cursor.copy(COPY_SQL) as copy,
    ):
        for block in copy:
            rows += bytes(block).count(b"\n")
    return rows / (time.perf_counter() - started)


def export(cookie: str) -> bool:
    since = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=SUBSET_DAYS)
    expected = {
        "whole ledger": int(
            common.psql("SELECT count(*) FROM consent_ledgerentry", CLONE)
        ),
        f"since={since}": int(
            common.psql(
                "SELECT count(*) FROM consent_ledgerentry "  # noqa: S608 - a date
                f"WHERE created_at >= '{since.isoformat()}T00:00:00+00:00'",
                CLONE,
            )
        ),
    }
    paths = {
        "whole ledger": "/audit/ledger/?format=csv",
        f"since={since}": f"/audit/ledger/?format=csv&since={since}",
    }
    copy_rows_s = copy_rate()
    os.environ["GUNICORN_CMD_ARGS"] = "--timeout 900"
    try:
        with common.gunicorn(workers=1) as base:
            worker = gunicorn_worker(base)
            check(f"{base}/audit/", cookie)  # the worker's first request: warm
            runs = {name: download(base, path, cookie, worker)
                    for name, path in paths.items()}  # fmt: skip
    finally:
        del os.environ["GUNICORN_CMD_ARGS"]
    start = min(r["before"] for r in runs.values())
    rows = [["export", "rows", "expected", "MB", "s", "rows/s",
             "x COPY", "MB/s", "RSS before MB", "peak MB", "growth MB"]]  # fmt: skip
    ok = True
    for name, r in runs.items():
        rate = r["rows"] / r["seconds"]
        ok &= r["rows"] == expected[name] and r["peak"] - start < GOAL_GROWTH_MB
        rows.append(
            [name, f"{r['rows']:,}", f"{expected[name]:,}", f"{r['size'] / 1e6:.0f}",
             f"{r['seconds']:.1f}", f"{rate:,.0f}",
             f"{rate / copy_rows_s:.2f}", f"{r['size'] / 1e6 / r['seconds']:.1f}",
             f"{r['before']:.0f}", f"{r['peak']:.0f}", f"{r['peak'] - start:+.1f}"]
        )  # fmt: skip
    print(f"\nledger CSV (gunicorn --workers 1; COPY: {copy_rows_s:,.0f} rows/s)")
    print(common.table(rows))
    slow = [name for name, r in runs.items() if r["seconds"] > WORKER_TIMEOUT]
    if slow:
        print(
            f"note: {', '.join(slow)} took longer than gunicorn's default "
            f"{WORKER_TIMEOUT} s worker timeout: served as README deploys it, a "
            "sync worker would be killed mid-stream"
        )
    print(
        f"\ngoal (worker peak < +{GOAL_GROWTH_MB:.0f} MB over its RSS before, at "
        "both sizes; rows as the table's): " + ("MET" if ok else "NOT MET")
    )
    return ok


def main() -> None:
    # Production settings require it (links in e-mails); common.bench_env
    # does not set it yet.

    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    print(f"load average before (1, 5, 15 min; {os.cpu_count()} CPUs): {load}")
    clone_ensure()
    common.setup_django()
    from catalog.models import Track

    cookie = auditor_cookie()
    some_pk = Track.objects.values_list("pk", flat=True).order_by("pk").first()
    refresh_timed()
    from django.db import connection

    connection.close()
    pages(cookie, some_pk)
    export(cookie)


if __name__ == "__main__":
    main()
