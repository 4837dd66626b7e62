"""Paths under load against the trivial signed-in view, in the same rounds.

Shared by the benches of public pages (``partner_trainability.py``,
``signals_public.py``): wrk picks each request's path from a list (a Lua
script written to a file), the runs rotate their order every round (this
machine's speed drifts), the ratio is taken per round and the figures are
medians, with the CPU each request cost gunicorn and PostgreSQL.
"""

import statistics
from pathlib import Path

from bench import common

TRIVIAL = "baseline: trivial view"
ROTATING_PATHS_LUA = """
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


def rotating_paths(path: Path, paths: list[str]) -> Path:
    """A wrk script at ``path`` that GETs a random one of ``paths``."""
    path.write_text(ROTATING_PATHS_LUA % {"paths": ",".join(f'"{p}"' for p in paths)})
    return path


def run_rounds(
    *,
    base: str,
    trivial_url: str,
    cookie: str,
    scripts: dict[str, Path],
    rounds: int,
    seconds: int,
) -> tuple[dict[str, list[common.LoadResult]], dict[str, list[dict[str, float]]]]:
    """The trivial view and each script, ``rounds`` times in rotating order."""
    names = [TRIVIAL, *scripts]
    results: dict[str, list[common.LoadResult]] = {name: [] for name in names}
    cpu: dict[str, list[dict[str, float]]] = {name: [] for name in names}

    def run(name: str, length: int) -> common.LoadResult:
        if name == TRIVIAL:
            return common.load(name, trivial_url, cookie=cookie, seconds=length)
        return common.load_script(name, base, scripts[name], seconds=length)

    for name in names:  # warm every worker up on every path
        run(name, 2)
    for round_number in range(1, rounds + 1):
        shift = (round_number - 1) % len(names)
        for name in names[shift:] + names[:shift]:
            before = common.cpu_seconds()
            r = run(name, seconds)
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
    return results, cpu


def report(
    results: dict[str, list[common.LoadResult]],
    cpu: dict[str, list[dict[str, float]]],
    *,
    heading: str,
) -> dict[str, float]:
    """Print the table of medians; return each script's throughput ratio."""

    def median_ratio(name: str, attribute: str) -> float:
        return statistics.median(
            getattr(run, attribute) / getattr(base_run, attribute)
            for run, base_run in zip(results[name], results[TRIVIAL], strict=True)
        )

    print(f"\n{heading}")
    print(
        common.table(
            [
                ["run", "req/s", "p50 ms", "p99 ms", "x trivial", "p99/trivial",
                 "CPU ms gunicorn", "CPU ms PostgreSQL"],
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
    )  # fmt: skip
    return {
        name: median_ratio(name, "requests_per_second")
        for name in results
        if name != TRIVIAL
    }


def errors_in(results: dict[str, list[common.LoadResult]]) -> int:
    return sum(r.errors for runs in results.values() for r in runs)
