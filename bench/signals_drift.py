"""The nightly drift check over the million-track catalogue (issue 13).

``manage.py check_signals`` in a subprocess of its own: every public signal
of every track rendered in process and read back (page headers and markup,
CAWG, RSL, the track's answer in robots.txt, tdmrep.json and license.rsl,
whose cached copies are compared with a fresh build), the stored eligibility
against the ledger's newest rows, and the tags of tagged audio copies. For
the tags, ``BENCH_TAGGED`` (1,000) tracks are given a small WAV for the run
(files in a temporary folder; their ``audio_file`` is set back to what it
was afterwards) and their copies are built first.

This script samples the subprocess's resident memory every half second.
Goal: minutes (under 10) and memory flat (the second half of the run no
more than 50 MB above the first half's peak).
"""

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench.catalog_list import ensure_catalogue  # noqa: E402

TIMEOUT = 20 * 60
TAGGED = int(os.environ.get("BENCH_TAGGED", "1000"))
GOAL_SECONDS = 600
GOAL_GROWTH_MB = 50


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(8000))
    return buffer.getvalue()


def give_audio(media: Path) -> dict[int, str]:
    """``TAGGED`` tracks spread over the catalogue get a WAV each, and their
    tagged copies; returns their previous ``audio_file`` to restore."""
    from django.db import connection

    from catalog.models import Track
    from consent.services import tagged_copies_build

    step = max(1, Track.objects.count() // max(TAGGED, 1))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, audio_file FROM catalog_track WHERE id %% %s = 0 "
            "ORDER BY id LIMIT %s",
            [step, TAGGED],
        )
        before = dict(cursor.fetchall())
    (media / "audio").mkdir(parents=True)
    data = wav()
    for pk in before:
        (media / "audio" / f"bench-{pk}.wav").write_bytes(data)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE catalog_track SET audio_file = 'audio/bench-' || id || '.wav' "
            "WHERE id = ANY(%s)",
            [list(before)],
        )
    started = time.monotonic()
    built = tagged_copies_build(track_ids=list(before))
    print(
        f"{built:,} tracks given a WAV and its tagged copy "
        f"in {time.monotonic() - started:.1f}s",
        flush=True,
    )
    return before


def restore(before: dict[int, str]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for pk, name in before.items():
            cursor.execute(
                "UPDATE catalog_track SET audio_file = %s WHERE id = %s", [name, pk]
            )


def main() -> None:
    ensure_catalogue()
    folder = Path(tempfile.mkdtemp(prefix="refrain-bench-drift-"))
    extra = {
        "MEDIA_ROOT": str(folder / "media"),
        "REFRAIN_TAGGED_AUDIO_DIR": str(folder / "tagged"),
    }
    os.environ.update(extra)
    common.setup_django()
    from consent.models import CheckRun

    before = give_audio(folder / "media") if TAGGED else {}
    samples: list[tuple[float, float]] = []
    try:
        log = folder / "check_signals.log"
        started = time.monotonic()
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "check_signals"],
                cwd=common.ROOT,
                env=common.bench_env(**extra),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            while process.poll() is None:
                samples.append((time.monotonic() - started, rss_mb(process.pid)))
                if time.monotonic() - started > TIMEOUT:
                    raise RuntimeError("the drift check did not finish in time")
                time.sleep(0.5)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        elapsed = time.monotonic() - started
        output = log.read_text()
    finally:
        restore(before)
        shutil.rmtree(folder, ignore_errors=True)
    lines = output.strip().splitlines()
    summary = lines[-1] if lines else "(no output)"
    counted = re.search(r"of (\d+) tracks", summary)
    if counted is None:
        raise RuntimeError(f"check_signals did not finish:\n{output[-3000:]}")
    tracks = int(counted.group(1))
    memory = [rss for _, rss in samples if rss]
    half = len(memory) // 2
    first, second = max(memory[:half] or memory), max(memory[half:])
    print(
        common.table(
            [
                ["elapsed s", "RSS MB"],
                *[
                    [f"{t:.0f}", f"{rss:.0f}"]
                    for t, rss in samples[:: max(1, len(samples) // 12)]
                ],
            ]
        )
    )
    for line in lines[:-1][:10]:
        print(f"  {line}")
    run = CheckRun.objects.filter(kind="signals").order_by("-started_at").first()
    print(
        f"\nexit code {process.returncode}; {summary}\n"
        f"{tracks:,} tracks in {elapsed:.0f}s ({tracks / elapsed:,.0f} tracks/s); "
        f"peak RSS {max(memory):.0f} MB (first half {first:.0f}, second half "
        f"{second:.0f}); CheckRun {run.pk}: checked {run.checked:,}, problems "
        f"{run.problems}"
    )
    ok = elapsed < GOAL_SECONDS and second - first <= GOAL_GROWTH_MB
    print(
        f"goal (under {GOAL_SECONDS // 60} minutes, memory flat): "
        + ("MET" if ok else "NOT MET")
    )


if __name__ == "__main__":
    main()
