"""Single consent toggle under concurrent load on PostgreSQL (issue 4).

A switch as artists use it: an HTMX POST (session, CSRF) that flips one use
of one of the owner's tracks, on the track list (``/tracks/switch/``) and on
the track page (``/tracks/<id>/consent/``). Each wrk thread flips its own
share of 2,000 tracks, always to the opposite of the track's state, so every
request is a real change (ledger row, receipt, eligibility); the script
checks that afterwards. gunicorn as the README serves production (4 sync
workers; ``BENCH_WORKERS=2`` for the earlier sessions' setup), wrk 2 threads x
16 connections.

Baseline, same app, same round: a signed-in POST doing one UPDATE and two
INSERTs in one transaction. Eight rounds of 5 s runs, interleaved in a rotating
order, each round on freshly vacuumed tables;
the ratios are per round, the figures medians.
Goal: >= 80% of the baseline's throughput, p99 <= 1.25x.
"""

import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench import propagation_kit as kit  # noqa: E402
from bench.catalog_list import DB_NAME, OWNER, ensure_catalogue  # noqa: E402

LUA = """
ids = {%(ids)s}
pks = {%(pks)s}
last = {%(states)s}
thread_index = 0
thread_count = 1
counter = 1

function setup(thread)
  thread:set("thread_index", counter - 1)
  counter = counter + 1
end

function init(args)
  thread_count = %(threads)d
end

-- Each wrk thread flips its own share of the tracks, each request to the
-- opposite of what that thread last set, so every request is a real change
-- (a switch never asks for the state the track already has).
request = function()
  local i
  repeat
    i = math.random(#ids)
  until (i %% thread_count) == thread_index
  local s = (last[i] == "granted") and "denied" or "granted"
  last[i] = s
  local path
  local body
  if "%(kind)s" == "list" then
    path = "/tracks/switch/"
    body = "set=" .. ids[i] .. "%%7Cai-training%%7C" .. s
  elseif "%(kind)s" == "page" then
    path = "/tracks/" .. ids[i] .. "/consent/"
    body = "use=ai-training&state=" .. s
  else
    path = "/bench/write"
    body = "track=" .. pks[i] .. "&state=" .. s
  end
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = "%(cookie)s",
    ["X-CSRFToken"] = "%(csrf)s",
    ["HX-Request"] = "true",
    ["Referer"] = "%(base)s/tracks/",
  }, body)
end
"""


RUNS = (
    ("write", "baseline: UPDATE + 2 INSERT"),
    ("list", "switch on the track list"),
    ("page", "switch on the track page"),
)
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "8"))
SECONDS = 5
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))  # README: gunicorn --workers 4
THREADS = 2
# Issue 11: the toggle with three consumers configured (the registry and two
# partner webhooks); BENCH_DELIVERY_WORKERS > 0 also runs a worker with that
# many processes delivering during the runs (on the same two CPUs).
DELIVERY_WORKERS = int(os.environ.get("BENCH_DELIVERY_WORKERS", "0"))


def main() -> None:
    ensure_catalogue()
    kit.setup_django()
    from django.db import connection
    from django.middleware.csrf import _get_new_csrf_string

    from catalog.models import Track
    from consent.models import LedgerEntry, TrackConsent

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_write_log "
            "(id bigserial PRIMARY KEY, track_id bigint, state text, at timestamptz)"
        )
    rows = list(
        Track.objects.filter(artist__email=OWNER, license_class="independent")
        .order_by("?")
        .values_list("public_id", "pk")[:2000]
    )
    rng = random.Random(3)
    rng.shuffle(rows)
    pks = [pk for _, pk in rows]
    csrf = _get_new_csrf_string()
    cookie = common.session_cookie_for(OWNER) + f"; csrftoken={csrf}"

    def script_for(kind: str, base: str, path: Path) -> Path:
        # Start each run from the tracks' current decisions so that every
        # request of it flips a track: a real change, never a no-op.
        use = "ai-inference" if kind == "write" else "ai-training"
        decided = dict(
            TrackConsent.objects.filter(track_id__in=pks, use=use).values_list(
                "track_id", "decision"
            )
        )
        path.write_text(
            LUA
            % {
                "ids": ",".join(f'"{public_id}"' for public_id, _ in rows),
                "pks": ",".join(str(pk) for pk in pks),
                "states": ",".join(f'"{decided.get(pk, "")}"' for pk in pks),
                "threads": THREADS,
                "kind": kind,
                "cookie": cookie,
                "csrf": csrf,
                "base": base,
            }
        )
        return path

    updated = "catalog_track, consent_trackconsent"
    touched = (
        f"{updated}, consent_ledgerentry, "
        "consent_receipt, consent_receipt_tracks, bench_write_log"
    )
    results: dict[str, list] = {name: [] for _, name in RUNS}
    cpu: dict[str, list[dict[str, float]]] = {name: [] for _, name in RUNS}
    changes: dict[str, int] = {name: 0 for _, name in RUNS}
    with (
        kit.three_consumers() as (consumers, _),
        common.gunicorn(workers=WORKERS) as base,
        tempfile.TemporaryDirectory() as tmp,
    ):
        celery = kit.Celery(Path(tmp))
        if DELIVERY_WORKERS:
            celery.worker(concurrency=DELIVERY_WORKERS)
        print(
            f"{len(consumers)} consumers configured "
            f"({', '.join(c.name for c in consumers)}); "
            f"delivering meanwhile: {DELIVERY_WORKERS or 'no'} worker processes",
            flush=True,
        )
        # What earlier benchmarks left (the import's rows, the policy run's
        # million updates) is vacuumed and written out before the first
        # round, not by the kernel's writeback in the middle of one, where it
        # stalls every commit behind it (seen as a p99 of 10x the others).
        # The warm-up runs then pay the checkpoint's full-page images, which
        # a run right after a checkpoint would pay for the first touch of
        # every page (checkpoints are minutes apart in production).
        common.psql(f"VACUUM ANALYZE {touched}", DB_NAME)
        common.psql("CHECKPOINT", DB_NAME)
        for kind, name in RUNS:  # warm every worker up on every path once
            warm = script_for(kind, base, Path(tmp) / f"{kind}-warm.lua")
            common.load_script(name, base, warm, seconds=2, threads=THREADS)
        for round_number in range(1, ROUNDS + 1):
            # Every round starts from freshly vacuumed tables (autovacuum's
            # job in production): the runs leave dead row versions and index
            # entries on the same 2,000 tracks that would slow every later
            # run. Only the two updated tables: the others only grow, and a
            # VACUUM ANALYZE of all six (3 s) left the first run after it
            # with a p99 up to twice the others'. Short runs, interleaved,
            # in an order that rotates: this machine's speed drifts by +-20%
            # over tens of seconds, and a ratio is only meaningful between
            # runs that shared the same conditions.
            common.psql(f"VACUUM {updated}", DB_NAME)
            shift = (round_number - 1) % len(RUNS)
            for kind, name in RUNS[shift:] + RUNS[:shift]:
                time.sleep(0.5)  # let the last run's requests commit
                script = script_for(kind, base, Path(tmp) / f"{kind}.lua")
                before = LedgerEntry.objects.filter(track_id__in=pks).count()
                cpu_before = common.cpu_seconds()
                r = common.load_script(
                    name, base, script, seconds=SECONDS, threads=THREADS
                )
                cpu_after = common.cpu_seconds()
                results[name].append(r)
                cpu[name].append(
                    {
                        side: (cpu_after[side] - cpu_before[side]) / r.requests * 1000
                        for side in cpu_after
                    }
                )
                changes[name] += (
                    LedgerEntry.objects.filter(track_id__in=pks).count() - before
                )
                print(
                    f"  round {round_number}, {name}: {r.requests_per_second:.0f} "
                    f"req/s, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, "
                    f"errors {r.errors}",
                    flush=True,
                )
        celery.stop()
    baseline_name = RUNS[0][1]

    def median_ratio(name: str, attribute: str) -> float:
        # Each run against the baseline of its own round, then the median.
        return statistics.median(
            getattr(run, attribute) / getattr(base_run, attribute)
            for run, base_run in zip(results[name], results[baseline_name], strict=True)
        )

    print(
        f"\ngunicorn --workers {WORKERS}, wrk {THREADS} threads x 16 connections, "
        f"{SECONDS} s per run, {ROUNDS} rounds: medians"
    )
    print(
        common.table(
            [
                ["run", "req/s", "p50 ms", "p99 ms", "x baseline", "p99/baseline"],
                *[
                    [
                        name,
                        f"{statistics.median(r.requests_per_second for r in runs):.0f}",
                        f"{statistics.median(r.p50_ms for r in runs):.1f}",
                        f"{statistics.median(r.p99_ms for r in runs):.1f}",
                        f"{median_ratio(name, 'requests_per_second'):.2f}",
                        f"{median_ratio(name, 'p99_ms'):.2f}",
                    ]
                    for name, runs in results.items()
                ],
            ]
        )
    )
    print("\nCPU per request (medians; a process that exited mid-run is not counted)")
    print(
        common.table(
            [
                ["run", "gunicorn ms", "PostgreSQL ms", "total ms"],
                *[
                    [
                        name,
                        f"{statistics.median(c['gunicorn'] for c in cpu[name]):.2f}",
                        f"{statistics.median(c['postgres'] for c in cpu[name]):.2f}",
                        f"{statistics.median(sum(c.values()) for c in cpu[name]):.2f}",
                    ]
                    for _, name in RUNS
                ],
            ]
        )
    )
    ok = True
    for _, name in RUNS[1:]:
        runs = results[name]
        # Every answered switch is a change: one ledger row per request.
        print(
            f"{name}: {sum(r.requests for r in runs)} requests, "
            f"{changes[name]} ledger rows written"
        )
        ok = ok and (
            median_ratio(name, "requests_per_second") >= 0.8
            and median_ratio(name, "p99_ms") <= 1.25
            and not any(r.errors for r in runs)
        )
    print(
        "\ngoal (>= 80% of baseline throughput, p99 <= 1.25x): "
        + ("MET" if ok else "NOT MET")
    )
    from consent.ledger import verify_chains

    report = verify_chains(track_ids=pks)
    print(
        f"ledger after the run: {report.rows_checked} rows on {report.tracks_checked} "
        f"tracks, {len(report.breaks)} breaks"
    )


if __name__ == "__main__":
    main()
