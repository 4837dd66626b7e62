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
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench.against_trivial import errors_in, report, rotating_paths, run_rounds  # noqa: E402
from bench.catalog_list import OWNER, ensure_catalogue  # noqa: E402

TRACKS = 3000
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = 8
GOAL = 0.8


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
    with common.gunicorn(workers=2) as base, tempfile.TemporaryDirectory() as tmp:
        scripts = {
            "public track page": rotating_paths(
                Path(tmp) / "pages.lua", [f"/t/{public_id}/" for public_id in ids]
            ),
            "robots.txt": rotating_paths(Path(tmp) / "robots.lua", ["/robots.txt"]),
        }
        check_answers(base, ids)
        results, cpu = run_rounds(
            base=base,
            trivial_url=f"{base}/bench/trivial?pk={some_pk}",
            cookie=cookie,
            scripts=scripts,
            rounds=ROUNDS,
            seconds=SECONDS,
        )
    ratios = report(
        results,
        cpu,
        heading=f"gunicorn --workers 2, wrk 2 threads x 16 connections, {SECONDS} s "
        f"per run, {ROUNDS} rounds: medians; {len(ids):,} track pages in rotation",
    )
    errors = errors_in(results)
    ok = min(ratios.values()) >= GOAL and errors == 0
    print(
        f"\ngoal (each >= {GOAL}x the trivial view's throughput, no errors: "
        + ", ".join(f"{name} {ratio:.2f}x" for name, ratio in ratios.items())
        + f", {errors} errors): "
        + ("MET" if ok else "NOT MET")
    )


if __name__ == "__main__":
    main()
