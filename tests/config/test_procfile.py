"""`make run`'s supervisor (``config.procfile``): Ctrl-C stops every process
with one SIGTERM to its main process and exits 0 (make then reports no
error); a process that stops by itself stops the others, exit 1."""

import signal
import subprocess
import sys
import time

from django.conf import settings

CHILD = (
    'python -c "import signal, sys, time; '
    "signal.signal(signal.SIGTERM, lambda *a: (print('{name} got SIGTERM', "
    "flush=True), sys.exit(0))); print('{name} ready', flush=True); "
    'time.sleep({sleep})"'
)


def _start(tmp_path, lines):
    procfile = tmp_path / "Procfile"
    procfile.write_text("\n".join(lines) + "\n")
    return subprocess.Popen(
        [sys.executable, "-m", "config.procfile", str(procfile)],
        cwd=settings.BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(process, text: str, seen: list[str]) -> None:
    deadline = time.monotonic() + 20
    while text not in "".join(seen):
        assert time.monotonic() < deadline, f"never saw {text!r}: {seen}"
        seen.append(process.stdout.readline())


def test_ctrl_c_stops_every_process_cleanly(tmp_path):
    supervisor = _start(
        tmp_path,
        [
            "one: " + CHILD.format(name="one", sleep=60),
            "two: " + CHILD.format(name="two", sleep=60),
        ],
    )
    seen: list[str] = []
    _wait_for(supervisor, "one ready", seen)
    _wait_for(supervisor, "two ready", seen)

    supervisor.send_signal(signal.SIGINT)
    rest, _ = supervisor.communicate(timeout=30)

    output = "".join(seen) + rest
    assert supervisor.returncode == 0
    assert "one    | one got SIGTERM" in output
    assert "two    | two got SIGTERM" in output
    assert "system | stopped" in output
    assert "killed" not in output and "Traceback" not in output


def test_a_process_that_stops_stops_the_others(tmp_path):
    supervisor = _start(
        tmp_path,
        [
            "short: " + CHILD.format(name="short", sleep=0.5),
            "long: " + CHILD.format(name="long", sleep=60),
        ],
    )
    output, _ = supervisor.communicate(timeout=30)
    assert supervisor.returncode == 1
    assert "short stopped by itself: stopping the others" in output
    assert "long   | long got SIGTERM" in output
