"""The partner API's eligibility check with 10,000 ISRCs per call.

``POST /api/v1/eligibility/check`` with ``{"use": "genai-training", "isrcs":
[10,000]}``: ISRCs of real tracks of the million-track catalogue, a fresh
random sample for every request (half of them hyphenated, as partners' lists
mix both forms) and 5% that no track has. A partner key of the bench's own
(``Authorization: Bearer``); the look-up log is on, as always: every call
writes one ``PartnerLookup`` row, and the script folds them at the end
(``lookups_fold``, as the worker does) and times that.

gunicorn with 2 workers; one client sending requests one after another over
one ``http.client`` connection (gunicorn's sync workers close it after each
answer and it reconnects), after a warm-up. Baseline in the same run: the
same 10,000 ISRCs looked up with one plain SQL statement on a psycopg
connection of this process. Interleaved rounds: a block of calls, then a
block of the baseline on the same samples.
Goal: p95 < 300 ms and p95 <= 3x the plain SQL's p95.

Then where the time goes, in this process (``django.test.Client``, the bench
settings): each step of the request on the same body, what a few changes
would save (the look-up without parallel workers, the ISRCs as one text
parameter, a lighter ISRC normalisation; measured here, none is in the app),
and with ``BENCH_PROFILE=1`` (or when the goal is missed) cProfile's top
functions.
The bench's partner, key, look-up rows and daily counts are deleted at the
end, and the bench broker (Redis database 3) emptied of the fold doorbells.
"""

import cProfile
import http.client
import io
import json
import os
import pstats
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench import propagation_kit as kit  # noqa: E402
from bench.catalog_list import ensure_catalogue  # noqa: E402

PARTNER = "Bench check partner"
USE = "genai-training"
ITEMS = 10_000
UNKNOWN_SHARE = 0.05
UNKNOWN = "XXBCH"  # no ISRC of the bench catalogue starts so (checked)
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "120"))
ROUNDS = 5
WARM_UP = 8
STEP_REPEATS = 7
GOAL_P95_MS = 300.0
GOAL_RATIO = 3.0
RAW_SQL = (
    "SELECT t.id, tc.eligible, t.consent_version FROM catalog_track t "
    "JOIN consent_trackconsent tc ON tc.track_id = t.id AND tc.use = %s "
    "WHERE t.isrc = ANY(%s)"
)


def hyphenated(isrc: str) -> str:
    return f"{isrc[:2]}-{isrc[2:5]}-{isrc[5:7]}-{isrc[7:]}"


def bench_partner_delete() -> None:
    """The bench's partner and everything of it (a run that was interrupted
    leaves them; the look-up rows go with the partner)."""
    from consent.models import ApiKey, Partner, PartnerLookup, PartnerLookupDay

    partners = list(Partner.objects.filter(name=PARTNER).values_list("pk", flat=True))
    if partners:
        PartnerLookup.objects.filter(partner_id__in=partners).delete()
        PartnerLookupDay.objects.filter(partner_id__in=partners).delete()
        ApiKey.objects.filter(partner_id__in=partners).delete()
        Partner.objects.filter(pk__in=partners).delete()


def samples_make(count: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """``count`` samples: (the ISRCs as sent, their normalised form)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT isrc FROM catalog_track WHERE isrc IS NOT NULL")
        known = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT count(*) FROM catalog_track WHERE isrc LIKE %s", [UNKNOWN + "%"]
        )
        if cursor.fetchone()[0]:
            raise RuntimeError(f"the catalogue has {UNKNOWN} ISRCs: pick another")
    rng = random.Random(seed)
    unknown = int(ITEMS * UNKNOWN_SHARE)
    samples = []
    for _ in range(count):
        compact = rng.sample(known, ITEMS - unknown) + [
            f"{UNKNOWN}{rng.randrange(10**7):07d}" for _ in range(unknown)
        ]
        rng.shuffle(compact)
        sent = [
            hyphenated(isrc) if index % 2 else isrc
            for index, isrc in enumerate(compact)
        ]
        samples.append((sent, compact))
    return samples


def body_for(sent: list[str]) -> bytes:
    return json.dumps({"use": USE, "isrcs": sent}).encode()


class Client:
    """One keep-alive-capable connection to gunicorn (reopened by http.client
    whenever the server closes it, as gunicorn's sync workers do)."""

    def __init__(self, base: str, key: str):
        parts = urlsplit(base)
        self.connection = http.client.HTTPConnection(
            parts.hostname, parts.port, timeout=60
        )
        self.headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
        }
        self.reused = 0

    def check(self, body: bytes) -> tuple[float, int, bytes]:
        reusing = self.connection.sock is not None
        started = time.perf_counter()
        self.connection.request(
            "POST", "/api/v1/eligibility/check", body=body, headers=self.headers
        )
        response = self.connection.getresponse()
        data = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        self.reused += reusing
        return elapsed, response.status, data

    def close(self) -> None:
        self.connection.close()


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": kit.percentile(values, 0.50),
        "p95": kit.percentile(values, 0.95),
        "p99": kit.percentile(values, 0.99),
        "mean": statistics.fmean(values),
    }


def median_ms(function, repeats: int = STEP_REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def steps(key: str, partner, sample: tuple[list[str], list[str]]) -> list[list[str]]:
    """Each step of one call on the same body, in this process (medians)."""
    from django.db import connection
    from django.test import Client as DjangoClient

    from config.input_guard import json_problem
    from consent.partner_api import CheckIn
    from consent.partners.check import _parse, _rows, eligibility_check

    sent, compact = sample
    body = body_for(sent)
    parsed = json.loads(body)
    answer = eligibility_check(partner=partner, use=USE, isrcs=sent, track_ids=[])
    document = {
        "use": answer.use,
        "as_of": answer.as_of.isoformat(),
        "policy_version": answer.policy_version,
        "changes_cursor": answer.changes_cursor,
        "counts": answer.counts,
        "items": answer.items,
    }
    client = DjangoClient(HTTP_HOST="127.0.0.1")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}

    def whole() -> None:
        response = client.post(
            "/api/v1/eligibility/check", body, "application/json", **auth
        )
        if response.status_code != 200:
            raise RuntimeError(f"in-process check: {response.content[:300]!r}")

    def lookup_insert() -> None:
        from consent.models import PartnerLookup

        PartnerLookup.objects.create(
            partner=partner, use=USE, track_ids=list(range(9500)), answers="0" * 9500
        )

    def raw_sql() -> None:
        with connection.cursor() as cursor:
            cursor.execute(RAW_SQL, [USE, compact])
            cursor.fetchall()

    measured = [
        ("whole call (django.test.Client, no HTTP)", whole),
        ("  input guard: json.loads of the body", lambda: json.loads(body)),
        ("  input guard: json_problem walk", lambda: json_problem(parsed)),
        ("  ninja: json.loads again (Parser)", lambda: json.loads(body)),
        ("  ninja/pydantic: CheckIn validation",
         lambda: CheckIn.model_validate(parsed)),
        ("  check: pattern + compact_isrc loop", lambda: _parse(sent, [])),
        ("  check: the SQL (_rows, 3 tables)", lambda: _rows("isrc", compact, USE)),
        ("  check: eligibility_check in all", lambda: eligibility_check(
            partner=partner, use=USE, isrcs=sent, track_ids=[])),
        ("    of which: look-up INSERT (9,500 ids)", lookup_insert),
        ("  response: orjson.dumps", lambda: orjson.dumps(document)),
        ("baseline: the plain SQL (Django cursor)", raw_sql),
    ]  # fmt: skip
    whole()  # warm
    return [[name, f"{median_ms(function):.1f}"] for name, function in measured]


def profile(key: str, sample: tuple[list[str], list[str]]) -> str:
    from django.test import Client as DjangoClient

    client = DjangoClient(HTTP_HOST="127.0.0.1")
    body = body_for(sample[0])
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(3):
        client.post(
            "/api/v1/eligibility/check",
            body,
            "application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(18)
    return out.getvalue()


def check_once(client: Client, body: bytes) -> tuple[float, bytes]:
    elapsed, status, data = client.check(body)
    if status != 200:
        raise RuntimeError(f"the check answered {status}: {data[:300]!r}")
    return elapsed, data


def measure(base: str, key: str, samples: list, bodies: list[bytes], raw) -> dict:
    """Warm up, then rounds of calls and of the plain SQL on the same samples."""
    run = {"endpoint": [], "baseline": [], "reused": 0, "bytes": 0}
    # gunicorn's CPU only: PostgreSQL's parallel workers come and go (and
    # autovacuum with them), so its processes' sums are not steady here.
    cpu = {"gunicorn": 0.0}
    counts = {"eligible": 0, "not_eligible": 0, "unknown": 0}
    client = Client(base, key)
    for index in range(WARM_UP):
        check_once(client, bodies[index])
        raw.execute(RAW_SQL, [USE, samples[index][1]]).fetchall()
    measured = list(range(WARM_UP, WARM_UP + REQUESTS))
    size = -(-len(measured) // ROUNDS)
    for number, start in enumerate(range(0, len(measured), size), 1):
        block = measured[start : start + size]
        before = common.cpu_seconds()
        for index in block:
            elapsed, data = check_once(client, bodies[index])
            run["endpoint"].append(elapsed)
            answer = json.loads(data)
            for name in counts:
                counts[name] += answer["counts"][name]
            run["bytes"] += len(data)
        cpu["gunicorn"] += common.cpu_seconds()["gunicorn"] - before["gunicorn"]
        for index in block:
            started = time.perf_counter()
            raw.execute(RAW_SQL, [USE, samples[index][1]]).fetchall()
            run["baseline"].append((time.perf_counter() - started) * 1000)
        print(
            f"  round {number}: check p50 "
            f"{statistics.median(run['endpoint'][-len(block) :]):.0f} ms, plain SQL "
            f"p50 {statistics.median(run['baseline'][-len(block) :]):.1f} ms",
            flush=True,
        )
    run["reused"] = client.reused
    client.close()
    return {**run, "cpu": cpu, "counts": counts}


def run_and_report(partner, key: str) -> None:
    import psycopg

    from consent.models import PartnerLookup, PartnerLookupDay
    from consent.partners import lookups_fold

    started = time.monotonic()
    samples = samples_make(WARM_UP + REQUESTS + 1, seed=12)
    bodies = [body_for(sent) for sent, _ in samples]
    print(
        f"{len(samples)} samples of {ITEMS:,} ISRCs ({UNKNOWN_SHARE:.0%} unknown, "
        f"bodies of {len(bodies[0]) / 1000:.0f} kB) drawn in "
        f"{time.monotonic() - started:.1f}s",
        flush=True,
    )
    with (
        psycopg.connect(common.BENCH_DATABASE_URL, autocommit=True) as raw,
        common.gunicorn(workers=2) as base,
    ):
        run = measure(base, key, samples, bodies, raw)
    endpoint, baseline = run["endpoint"], run["baseline"]
    cpu, counts, reused, response_bytes = (
        run["cpu"],
        run["counts"],
        run["reused"],
        run["bytes"],
    )

    calls = PartnerLookup.objects.filter(partner=partner).count()
    logged = PartnerLookup.objects.filter(partner=partner).values_list(
        "answers", flat=True
    )
    logged_tracks = sum(len(answers) for answers in logged)
    started = time.monotonic()
    folded = lookups_fold()
    fold_s = time.monotonic() - started
    day_rows = PartnerLookupDay.objects.filter(partner=partner).count()

    check, plain = summary(endpoint), summary(baseline)
    ratio = check["p95"] / plain["p95"]
    n = len(endpoint)
    print(
        f"\n{n} checks of {ITEMS:,} ISRCs, one after another (gunicorn --workers 2; "
        f"{reused} on a reused connection); baseline {len(baseline)} plain SQL "
        "look-ups of the same ISRCs"
    )
    print(
        common.table(
            [
                ["run", "p50 ms", "p95 ms", "p99 ms", "mean ms", "p95 / SQL p95"],
                ["POST /api/v1/eligibility/check", *(f"{check[k]:.1f}" for k in
                 ("p50", "p95", "p99", "mean")), f"{ratio:.2f}"],
                ["baseline: plain SQL (psycopg)", *(f"{plain[k]:.1f}" for k in
                 ("p50", "p95", "p99", "mean")), "1.00"],
            ]
        )
    )  # fmt: skip
    print(
        f"\ngunicorn CPU per call: {cpu['gunicorn'] / n * 1000:.0f} ms (the Python "
        "side: parsing, the answer, the log; the rest of a call waits on PostgreSQL)"
    )
    print(
        f"answers: {counts['eligible']:,} eligible, {counts['not_eligible']:,} not, "
        f"{counts['unknown']:,} unknown; {response_bytes / n / 1e6:.2f} MB per answer"
    )
    print(
        f"look-up log: {calls} calls logged ({logged_tracks:,} track look-ups); "
        f"lookups_fold folded {folded} calls into {day_rows:,} daily rows in "
        f"{fold_s:.1f}s ({logged_tracks / fold_s:,.0f} look-ups/s, "
        f"{fold_s / max(folded, 1) * 1000:.0f} ms per call)"
    )
    ok = check["p95"] < GOAL_P95_MS and ratio <= GOAL_RATIO and calls == n + WARM_UP
    print(
        f"\ngoal (p95 < {GOAL_P95_MS:.0f} ms: {check['p95']:.0f} ms; p95 <= "
        f"{GOAL_RATIO:.0f}x plain SQL: {ratio:.2f}x; one logged call per request): "
        + ("MET" if ok else "NOT MET")
    )

    sample = samples[-1]
    print("\nwhere the time goes (this process, one call's body, medians of "
          f"{STEP_REPEATS}):")  # fmt: skip
    print(common.table([["step", "ms"], *steps(key, partner, sample)]))
    if not ok or os.environ.get("BENCH_PROFILE"):
        print("\ncProfile, 3 calls through django.test.Client (by own time):")
        print(profile(key, sample))


def main() -> None:
    ensure_catalogue()
    common.setup_django()

    from consent.models import PartnerLookup
    from consent.partners import apikey_create, lookups_fold, partner_create

    kit.broker_flush()
    bench_partner_delete()
    if PartnerLookup.objects.exists():
        lookups_fold()  # calls logged before this run: not this run's to time
    partner = partner_create(name=PARTNER)
    _, key = apikey_create(
        name="bench", scope="partner", partner=partner, rate_limit=100_000
    )
    try:
        run_and_report(partner, key)
    finally:
        bench_partner_delete()
        kit.broker_flush()  # the fold doorbells the calls rang (no worker here)


if __name__ == "__main__":
    main()
