"""A policy change that flips the eligibility of 1,000,000 tracks (issue 4).

Flips the independent rule for generative-AI training between opt-in and
opt-out, so every independent track without a decision changes eligibility.
A real Celery worker (its own process, solo pool) runs the re-evaluation;
this script samples the worker's resident memory while it runs.
Goal: under 5 minutes, memory flat (not growing with the number of tracks).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench.catalog_list import ensure_catalogue  # noqa: E402

TIMEOUT = 15 * 60


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ensure_catalogue()
    env = common.bench_env(EMAIL_URL="dummymail://")
    os.environ["EMAIL_URL"] = "dummymail://"
    common.setup_django()
    from accounts.models import User
    from consent.models import LedgerEntry, PolicyVersion
    from consent.policy import policy_current
    from consent.services import policy_preview, policy_publish

    # The bench broker database belongs to the benchmarks: start empty.
    subprocess.run(
        ["redis-cli", "-u", common.BENCH_REDIS_URL, "FLUSHDB"],
        check=True,
        capture_output=True,
    )
    current = policy_current()
    key = ("independent", "genai-training")
    new_rule = "opt_out" if current.rule(*key) == "opt_in" else "opt_in"
    rules = dict(current.rules)
    rules[key] = new_rule
    started = time.monotonic()
    preview = policy_preview(rules=rules)[key]
    print(
        f"policy v{current.number} -> v{current.number + 1}: independent "
        f"genai-training {current.rule(*key)} -> {new_rule}; preview: "
        f"{preview['gain']:,} become eligible, {preview['lose']:,} stop "
        f"(counted in {time.monotonic() - started:.1f}s)",
        flush=True,
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=common.ROOT,
        env=env,
        start_new_session=True,
    )
    samples: list[tuple[float, float, int]] = []
    try:
        time.sleep(3)
        admin = User.objects.filter(is_superuser=True).first()
        started = time.monotonic()
        version = policy_publish(
            rules=rules, actor=admin, reason="Benchmark: flip generative AI training"
        )
        while True:
            version.refresh_from_db()
            elapsed = time.monotonic() - started
            samples.append(
                (elapsed, rss_mb(worker.pid), version.applied_through_track_id)
            )
            if version.applied_at is not None:
                break
            if elapsed > TIMEOUT or worker.poll() is not None:
                raise RuntimeError("the re-evaluation did not finish")
            time.sleep(2)
        total = (version.applied_at - version.created_at).total_seconds()
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
    changed = LedgerEntry.objects.filter(request_id=f"policy-{version.number}").count()
    memory = [rss for _, rss, _ in samples if rss]
    print(
        common.table(
            [
                ["elapsed s", "worker RSS MB", "tracks done up to id"],
                *[
                    [f"{t:.0f}", f"{rss:.0f}", f"{cursor:,}"]
                    for t, rss, cursor in samples[:: max(1, len(samples) // 12)]
                ],
            ]
        )
    )
    print(
        f"\nre-evaluated every track in {total:.0f}s; {changed:,} ledger rows "
        f"(source policy); worker RSS {min(memory):.0f}-{max(memory):.0f} MB "
        f"(first half max {max(memory[: len(memory) // 2] or memory):.0f}, "
        f"second half max {max(memory[len(memory) // 2 :]):.0f})"
    )
    versions = PolicyVersion.objects.count()
    ok = total < 300 and max(memory) - min(memory) < 100
    print(
        f"goal (under 5 minutes, memory flat): {'MET' if ok else 'NOT MET'} "
        f"({versions} policy versions in the bench database)"
    )


if __name__ == "__main__":
    main()
