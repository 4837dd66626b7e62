"""Shared pieces of the benchmarks: the database, gunicorn, sessions, wrk.

Everything runs on 127.0.0.1 and is bounded in time. Each script starts its
own gunicorn and stops only that process (by pid).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/refrain_bench"
)
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")


def bench_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CACHE_URL", "CELERY_BROKER_URL")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.bench",
        DJANGO_SECRET_KEY="bench-" + "k" * 60,
        # A fixed Ed25519 seed (32 bytes of 0x0b, base64url): benchmarks only.
        REFRAIN_SIGNING_KEY="CwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCwsLCws",
        DATABASE_URL=BENCH_DATABASE_URL,
        CACHE_URL=BENCH_REDIS_URL,
        CELERY_BROKER_URL=BENCH_REDIS_URL,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        REFRAIN_SITE_URL="http://127.0.0.1",
        CONN_MAX_AGE="600",
    )
    env.update(extra)
    return env


def setup_django() -> None:
    os.environ.update(bench_env())
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def manage(*args: str, env: dict | None = None, check: bool = True) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env or bench_env(),
        capture_output=True,
        text=True,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def psql(sql: str, database: str = "postgres") -> str:
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-Atqc", sql],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(workers: int = 2):
    """Serve the app with gunicorn on a free loopback port; stop it after."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=bench_env(),
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class LoadResult:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def load(
    name: str,
    url: str,
    *,
    cookie: str,
    connections: int = 16,
    seconds: int = 10,
    threads: int = 2,
) -> LoadResult:
    """Run wrk against one URL and parse throughput and latency percentiles."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is missing: apt-get install -y wrk")
    # Fail loudly if the URL does not answer 200 (a benchmark of a redirect or
    # an error page would be meaningless).
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=30) as response:
        if response.status != 200 or response.url != url:
            raise RuntimeError(f"{url} answered {response.status} at {response.url}")
    return _wrk(name, ["-H", f"Cookie: {cookie}", url], connections, seconds, threads)


def load_script(
    name: str,
    base: str,
    script: Path,
    *,
    connections: int = 16,
    seconds: int = 10,
    threads: int = 2,
) -> LoadResult:
    """Run wrk with a Lua script (requests built by the script)."""
    return _wrk(name, ["-s", str(script), base], connections, seconds, threads)


def _wrk(
    name: str, target: list[str], connections: int, seconds: int, threads: int
) -> LoadResult:
    output = subprocess.run(
        [
            shutil.which("wrk") or "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            "10s",
            *target,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return _parse(name, output)


def _parse(name: str, output: str) -> LoadResult:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))
    total = int(re.search(r"(\d+) requests in", output).group(1))
    errors_match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    errors = int(errors_match.group(1)) if errors_match else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return LoadResult(name, rps, p50, p99, total, errors)


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by gunicorn and PostgreSQL processes on this
    machine (user + system, from ``/proc``). Differences around a run, divided
    by its requests, give the CPU each side spent per request: steadier than
    throughput on a machine whose speed drifts, and it says where time goes.
    """
    used = {"gunicorn": 0.0, "postgres": 0.0}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as stat_file:
                stat = stat_file.read()
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline_file:
                cmdline = cmdline_file.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        if b"gunicorn" in cmdline:
            used["gunicorn"] += seconds
        elif "(postgres)" in stat:
            used["postgres"] += seconds
    return used


def session_cookie_for(email: str) -> str:
    """A signed-in session for ``email`` created directly in the session store."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.models import User

    user = User.objects.get(email=email)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    )
