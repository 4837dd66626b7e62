"""Single consent toggle under concurrent load on PostgreSQL (issue 4).

POST /tracks/<id>/consent/ as HTMX (CSRF, session), random tracks of the
owner's 20,000 and random yes/no, 2 gunicorn workers, 16 connections, 10 s.
Baseline, same app, same run: a signed-in POST doing one UPDATE and two
INSERTs in one transaction. Goal: >= 80% of its throughput, p99 <= 1.25x.
"""

import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench.catalog_list import OWNER, ensure_catalogue  # noqa: E402

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
WORKERS = 4  # as the README serves production: gunicorn --workers 4
THREADS = 2


def main() -> None:
    ensure_catalogue()
    common.setup_django()
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

    results = {}
    changes = {}
    with (
        common.gunicorn(workers=WORKERS) as base,
        tempfile.TemporaryDirectory() as tmp,
    ):
        for kind, name in RUNS:
            warm = script_for(kind, base, Path(tmp) / f"{kind}-warm.lua")
            common.load_script(name, base, warm, seconds=2, threads=THREADS)
            script = script_for(kind, base, Path(tmp) / f"{kind}.lua")
            before = LedgerEntry.objects.filter(track_id__in=pks).count()
            results[name] = r = common.load_script(
                name, base, script, seconds=10, threads=THREADS
            )
            changes[name] = (
                LedgerEntry.objects.filter(track_id__in=pks).count() - before
            )
            print(
                f"  {name}: {r.requests_per_second:.0f} req/s, p50 {r.p50_ms:.1f} ms, "
                f"p99 {r.p99_ms:.1f} ms, errors {r.errors}",
                flush=True,
            )
    baseline = results[RUNS[0][1]]
    print(
        f"\ngunicorn --workers {WORKERS}, wrk {THREADS} threads x 16 connections, 10 s"
    )
    print(
        common.table(
            [
                ["run", "req/s", "p50 ms", "p99 ms", "x baseline", "p99/baseline"],
                *[
                    [
                        r.name,
                        f"{r.requests_per_second:.0f}",
                        f"{r.p50_ms:.1f}",
                        f"{r.p99_ms:.1f}",
                        f"{r.requests_per_second / baseline.requests_per_second:.2f}",
                        f"{r.p99_ms / baseline.p99_ms:.2f}",
                    ]
                    for r in results.values()
                ],
            ]
        )
    )
    ok = True
    for _, name in RUNS[1:]:
        r = results[name]
        # Every answered switch is a change: one ledger row per request.
        print(f"{name}: {r.requests} requests, {changes[name]} ledger rows written")
        ok = ok and (
            r.requests_per_second >= 0.8 * baseline.requests_per_second
            and r.p99_ms <= 1.25 * baseline.p99_ms
            and r.errors == 0
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
