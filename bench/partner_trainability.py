"""The public trainability answer under load.

``GET /api/v1/tracks/{isrc_or_public_id}/trainability``, no key, limited per
address (``REFRAIN_PUBLIC_RATE_LIMIT`` set out of reach for the bench: wrk
calls from one address). wrk picks each request's path from 3,000 real
tracks of the million-track catalogue: a third by public id, a third by
compact ISRC, a third by hyphenated ISRC (a Lua script written to a
temporary file). No ``If-None-Match``: every answer is a full 200.

Baseline, same app, same round: the trivial signed-in view
``bench/catalog_list.py`` uses (session, user, one primary-key read).
gunicorn with 2 workers, wrk 2 threads x 16 connections, five rounds of 8 s
runs in a rotating order (this machine's speed drifts); the ratio is per
round, the figures medians, with the CPU each request cost gunicorn and
PostgreSQL (steadier than throughput).
Goal: >= 0.8x the trivial view's throughput.
"""

import json
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


def identifiers(rng: random.Random) -> list[str]:
    """A third of public ids, a third of compact ISRCs, a third hyphenated."""
    from catalog.models import Track

    rows = list(
        Track.objects.filter(isrc__isnull=False)
        .order_by("?")
        .values_list("public_id", "isrc")[:TRACKS]
    )
    rng.shuffle(rows)
    chosen = []
    for index, (public_id, isrc) in enumerate(rows):
        if index % 3 == 0:
            chosen.append(public_id)
        elif index % 3 == 1:
            chosen.append(isrc)
        else:
            chosen.append(f"{isrc[:2]}-{isrc[2:5]}-{isrc[5:7]}-{isrc[7:]}")
    return chosen


def check_answers(base: str, ids: list[str]) -> None:
    """Every path answers 200 with the answer's shape (a sample of them)."""
    for identifier in ids[:30]:
        url = f"{base}/api/v1/tracks/{identifier}/trainability"
        with urllib.request.urlopen(url, timeout=10) as response:
            answer = json.loads(response.read())
            if response.status != 200 or set(answer) != {
                "id",
                "permitted",
                "as_of",
                "consent_version",
            }:
                raise RuntimeError(f"{url} answered {response.status}: {answer}")


def main() -> None:
    ensure_catalogue()
    # wrk sends everything from 127.0.0.1: the per-address limit out of reach.
    os.environ["REFRAIN_PUBLIC_RATE_LIMIT"] = str(10**9)
    common.setup_django()
    from catalog.models import Track

    ids = identifiers(random.Random(12))
    some_pk = Track.objects.filter(artist__email=OWNER).values_list("pk", flat=True)[0]
    cookie = common.session_cookie_for(OWNER)
    name = "trainability (public)"
    with common.gunicorn(workers=2) as base, tempfile.TemporaryDirectory() as tmp:
        script = rotating_paths(
            Path(tmp) / "trainability.lua",
            [f"/api/v1/tracks/{identifier}/trainability" for identifier in ids],
        )
        check_answers(base, ids)
        results, cpu = run_rounds(
            base=base,
            trivial_url=f"{base}/bench/trivial?pk={some_pk}",
            cookie=cookie,
            scripts={name: script},
            rounds=ROUNDS,
            seconds=SECONDS,
        )
    ratio = report(
        results,
        cpu,
        heading=f"gunicorn --workers 2, wrk 2 threads x 16 connections, {SECONDS} s "
        f"per run, {ROUNDS} rounds: medians; {len(ids):,} tracks in rotation",
    )[name]
    errors = errors_in(results)
    ok = ratio >= GOAL and errors == 0
    print(
        f"\ngoal (>= {GOAL}x the trivial view's throughput, no errors: "
        f"{ratio:.2f}x, {errors} errors): " + ("MET" if ok else "NOT MET")
    )


if __name__ == "__main__":
    main()
