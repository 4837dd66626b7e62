"""The public signals under load: the public track page and robots.txt.

``GET /t/<public_id>/`` (no sign-in: the page with every signal in its
headers and markup), wrk picking each request's path from 3,000 real tracks
of the million-track catalogue (a Lua script written to a temporary file);
and ``GET /robots.txt`` (built once per change of the change feed and cached:
nothing changes during the run, so every request after the first is served
from the cache). Signed out, no cookie: what a crawler sends.

Baseline, same app, same round: the trivial signed-in view
``bench/catalog_list.py`` uses (session, user, one primary-key read).
gunicorn with 2 workers, wrk 2 threads x 16 connections, five rounds of 8 s
runs in a rotating order (this machine's speed drifts); the ratio is per
round, the figures medians, with the CPU each request cost gunicorn and
PostgreSQL (steadier than throughput).
Goal: each >= 0.8x the trivial view's throughput.
"""

import os
import random
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench.catalog_list import OWNER, ensure_catalogue  # noqa: E402

TRACKS = 3000
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = 8
GOAL = 0.8
LUA = """
paths = {%(paths)s}

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed)
end

request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""


def public_ids(rng: random.Random) -> list[str]:
    from catalog.models import Track

    ids = list(Track.objects.order_by("?").values_list("public_id", flat=True)[:TRACKS])
    rng.shuffle(ids)
    return ids


def check_answers(base: str, ids: list[str]) -> None:
    """Every path answers 200 with its signals (a sample of the pages)."""
    for public_id in ids[:30]:
        url = f"{base}/t/{public_id}/"
        with urllib.request.urlopen(url, timeout=10) as response:
            if response.status != 200 or response.headers["tdm-reservation"] not in (
                "0",
                "1",
            ):
                raise RuntimeError(f"{url} answered {response.status}")
    with urllib.request.urlopen(f"{base}/robots.txt", timeout=60) as response:
        text = response.read().decode()
        if response.status != 200 or "Content-Usage: /t/ " not in text:
            raise RuntimeError(f"robots.txt answered {response.status}")
        print(f"robots.txt: {len(text.encode()):,} bytes", flush=True)


def main() -> None:
    ensure_catalogue()
    common.setup_django()
    from catalog.models import Track

    ids = public_ids(random.Random(13))
    some_pk = Track.objects.filter(artist__email=OWNER).values_list("pk", flat=True)[0]
    cookie = common.session_cookie_for(OWNER)
    names = ("baseline: trivial view", "public track page", "robots.txt")
    results: dict[str, list[common.LoadResult]] = {name: [] for name in names}
    cpu: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    with common.gunicorn(workers=2) as base, tempfile.TemporaryDirectory() as tmp:
        scripts = {
            names[1]: Path(tmp) / "pages.lua",
            names[2]: Path(tmp) / "robots.lua",
        }
        scripts[names[1]].write_text(
            LUA % {"paths": ",".join(f'"/t/{public_id}/"' for public_id in ids)}
        )
        scripts[names[2]].write_text(LUA % {"paths": '"/robots.txt"'})
        check_answers(base, ids)
        trivial_url = f"{base}/bench/trivial?pk={some_pk}"

        def run(name: str, seconds: int) -> common.LoadResult:
            if name == names[0]:
                return common.load(name, trivial_url, cookie=cookie, seconds=seconds)
            return common.load_script(name, base, scripts[name], seconds=seconds)

        for name in names:  # warm every worker up on every path
            run(name, 2)
        for round_number in range(1, ROUNDS + 1):
            shift = (round_number - 1) % len(names)
            for name in names[shift:] + names[:shift]:
                before = common.cpu_seconds()
                r = run(name, SECONDS)
                after = common.cpu_seconds()
                results[name].append(r)
                cpu[name].append(
                    {side: (after[side] - before[side]) / r.requests * 1000
                     for side in after}
                )  # fmt: skip
                print(
                    f"  round {round_number}, {name}: {r.requests_per_second:.0f} "
                    f"req/s, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, "
                    f"errors {r.errors}",
                    flush=True,
                )

    def median_ratio(name: str, attribute: str) -> float:
        return statistics.median(
            getattr(run, attribute) / getattr(base_run, attribute)
            for run, base_run in zip(results[name], results[names[0]], strict=True)
        )

    print(
        f"\ngunicorn --workers 2, wrk 2 threads x 16 connections, {SECONDS} s per "
        f"run, {ROUNDS} rounds: medians; {len(ids):,} track pages in rotation"
    )
    print(
        common.table(
            [
                [
                    "run",
                    "req/s",
                    "p50 ms",
                    "p99 ms",
                    "x trivial",
                    "p99/trivial",
                    "CPU ms gunicorn",
                    "CPU ms PostgreSQL",
                ],
                *[
                    [
                        name,
                        f"{statistics.median(r.requests_per_second for r in runs):.0f}",
                        f"{statistics.median(r.p50_ms for r in runs):.1f}",
                        f"{statistics.median(r.p99_ms for r in runs):.1f}",
                        f"{median_ratio(name, 'requests_per_second'):.2f}",
                        f"{median_ratio(name, 'p99_ms'):.2f}",
                        f"{statistics.median(c['gunicorn'] for c in cpu[name]):.2f}",
                        f"{statistics.median(c['postgres'] for c in cpu[name]):.2f}",
                    ]
                    for name, runs in results.items()
                ],
            ]
        )
    )
    ratios = {name: median_ratio(name, "requests_per_second") for name in names[1:]}
    errors = sum(r.errors for runs in results.values() for r in runs)
    ok = min(ratios.values()) >= GOAL and errors == 0
    print(
        f"\ngoal (each >= {GOAL}x the trivial view's throughput, no errors: "
        + ", ".join(f"{name} {ratio:.2f}x" for name, ratio in ratios.items())
        + f", {errors} errors): "
        + ("MET" if ok else "NOT MET")
    )


if __name__ == "__main__":
    main()
