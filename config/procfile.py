"""`make run`'s supervisor: start every process of a Procfile, prefix their
output with the time and their name, and stop them all cleanly on Ctrl-C.

Each process runs in a session of its own, so the terminal's Ctrl-C reaches
only this supervisor (and make), never the processes directly; each then
gets one SIGTERM, to its main process only: the web server stops, beat
stops, and a Celery worker finishes its tasks and stops its own pool (a
signal to the whole group, as honcho sends, kills the pool's children under
it and the worker logs each as an error). Whatever is still running after
``GRACE_SECONDS`` is killed. After a Ctrl-C the supervisor exits 0, so make
reports no error; if a process stops by itself, the others are stopped and
it exits 1.

    python -m config.procfile Procfile
"""

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time

GRACE_SECONDS = 15
_ENTRY = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


def entries(path: str) -> list[tuple[str, str]]:
    """``(name, command)`` of each line of the Procfile."""
    found = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            match = _ENTRY.match(line.strip())
            if match and not line.lstrip().startswith("#"):
                found.append((match.group(1), match.group(2)))
    return found


def _say(name: str, width: int, text: str) -> None:
    sys.stdout.write(f"{time.strftime('%H:%M:%S')} {name:<{width}} | {text}\n")
    sys.stdout.flush()


def _pump(name: str, width: int, stream) -> None:
    for line in stream:
        _say(name, width, line.rstrip("\n"))


def main(path: str) -> int:
    procs = entries(path)
    width = max([len(name) for name, _ in procs] + [len("system")])
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    running, pumps = [], []
    for name, command in procs:
        process = subprocess.Popen(  # noqa: S602 - the project's own Procfile
            f"exec {command}",
            shell=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
            bufsize=1,
        )
        pump = threading.Thread(
            target=_pump, args=(name, width, process.stdout), daemon=True
        )
        pump.start()
        pumps.append(pump)
        _say("system", width, f"{name} started (pid {process.pid})")
        running.append((name, process))
    failed = _watch(running, stop, width)
    _stop_all(running, width)
    for pump in pumps:  # their last lines are printed before "stopped"
        pump.join(timeout=2)
    _say("system", width, "stopped")
    return 1 if failed else 0


def _watch(running: list, stop: threading.Event, width: int) -> str | None:
    """Wait for Ctrl-C (None) or for a process to stop by itself (its name)."""
    while not stop.is_set():
        failed = next((n for n, p in running if p.poll() is not None), None)
        if failed:
            _say("system", width, f"{failed} stopped by itself: stopping the others")
            return failed
        stop.wait(0.5)
    _say("system", width, "Ctrl-C: stopping every process")
    return None


def _stop_all(running: list, width: int) -> None:
    """SIGTERM to each main process; SIGKILL to what is left of each group
    after the grace period (or at once, when its main process is gone)."""
    for _, process in running:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for name, process in running:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            _say("system", width, f"{name} did not stop in time: killed")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "Procfile"))
