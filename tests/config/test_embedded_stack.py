"""`make run` works with nothing but Python: SQLite, the filesystem broker, a worker.

Everything runs in subprocesses with ``config.settings.local`` and a private
``REFRAIN_VAR_DIR``, so neither the shared PostgreSQL and Redis nor the
checkout's own ``var/`` is touched.
"""

import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.slow

SERVICE_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "EMAIL_URL")
# Set by tests/browser while Playwright runs; not something `make run` has.
LEAKED_VARIABLES = ("DJANGO_ALLOW_ASYNC_UNSAFE",)
# Where kombu's filesystem transport puts its folders when not told otherwise:
# relative to the working directory, i.e. inside the checkout.
KOMBU_DEFAULT_FOLDERS = ("control", "data_in", "data_out", "processed")
COMMAND_TIMEOUT = 120
# seed_demo makes 8 decisions, each with a receipt. With no burst window
# (REFRAIN_RECEIPT_BURST_MINUTES=0, set below) the first rings the worker,
# which e-mails what is pending then in one e-mail per artist (beat's sweep
# sends the rest, and no beat runs here).
DEMO_RECEIPTS = 1
PING_TIMEOUT = 60
STOP_TIMEOUT = 15
DEMO_ACCOUNTS = 4  # indie, signed, auditor, admin: see `make run`
DEMO_TRACKS = 75  # seed_demo: 40 + 30 + 5


@pytest.fixture
def embedded_env(tmp_path) -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in SERVICE_VARIABLES + LEAKED_VARIABLES
    }
    environment["REFRAIN_VAR_DIR"] = str(tmp_path / "var")
    environment["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    environment["PYTHONUNBUFFERED"] = "1"
    return environment


def _run(args: list[str], environment: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, *args],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def _stop(process: subprocess.Popen) -> None:
    """Warm shutdown by SIGTERM; SIGKILL to its own process group if it hangs."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)


@pytest.fixture
def start_worker(embedded_env, tmp_path):
    """Start one Celery worker in its own process group; always stop it."""
    started: list[tuple[subprocess.Popen, Path]] = []

    def start() -> tuple[subprocess.Popen, Path]:
        log_path = tmp_path / f"worker-{len(started)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--pool=solo",
                    "--concurrency=1",
                    "--loglevel=INFO",
                ],
                cwd=settings.BASE_DIR,
                env=embedded_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append((process, log_path))
        return process, log_path

    yield start
    for process, _ in started:
        _stop(process)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def start_web(embedded_env, tmp_path):
    """`make run`'s web process (runserver), which serves the demo's own
    webhook receiver; always stopped."""
    started: list[subprocess.Popen] = []

    def start(port: int) -> Path:
        log_path = tmp_path / "web.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}",
                 "--noreload"],
                cwd=settings.BASE_DIR,
                env=embedded_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        started.append(process)
        deadline = time.monotonic() + PING_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)  # noqa: S310 - our own server on loopback
                return log_path
            except OSError:
                time.sleep(0.2)
        raise AssertionError(
            "runserver did not answer:\n" + log_path.read_text(errors="replace")
        )

    yield start
    for process in started:
        _stop(process)


def _demo_tracks(var_dir: Path) -> dict[str, int]:
    with closing(sqlite3.connect(var_dir / "db.sqlite3")) as database:
        return dict(
            database.execute("SELECT public_id, consent_version FROM catalog_track")
        )


def _received(var_dir: Path) -> dict[str, int]:
    path = var_dir / "demo-receiver" / "state.json"
    try:
        held = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return {public_id: entry["version"] for public_id, entry in held.items()}


def _entries(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir()} if folder.is_dir() else set()


def test_migrate_seed_and_worker_run_on_embedded_defaults(
    tmp_path, embedded_env, start_worker, start_web
):
    var_dir = tmp_path / "var"
    checkout = Path(settings.BASE_DIR)
    before = {name: _entries(checkout / name) for name in KOMBU_DEFAULT_FOLDERS}
    port = _free_port()
    embedded_env["REFRAIN_SITE_URL"] = f"http://127.0.0.1:{port}"
    # Receipts go out at once (by default they wait 3 minutes for the end of
    # a burst, and only beat sends them)
    embedded_env["REFRAIN_RECEIPT_BURST_MINUTES"] = "0"

    # given a fresh var/ with the schema and the demo accounts, and the web
    # process serving the demo partner's receiver
    _run(["manage.py", "migrate", "--noinput"], embedded_env)
    _run(["manage.py", "seed_demo"], embedded_env)
    web_log = start_web(port)

    # when a worker runs and another process sends it a ping
    worker, log_path = start_worker()
    token = secrets.token_urlsafe(16)
    _run(
        ["-c", f"from config.tasks import ping; ping.delay({token!r})"],
        embedded_env,
    )

    # then the worker answers from the same SQLite database
    ping_file = var_dir / "pings" / f"{token}.json"
    deadline = time.monotonic() + PING_TIMEOUT
    while not ping_file.exists() and worker.poll() is None:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert ping_file.exists(), (
        f"no ping after {PING_TIMEOUT}s (worker exit code {worker.poll()}):\n"
        + log_path.read_text(errors="replace")
    )
    assert json.loads(ping_file.read_text()) == {
        "token": token,
        "users": DEMO_ACCOUNTS,
    }

    # and that database is the WAL-mode file in var/, holding the demo accounts
    with closing(sqlite3.connect(var_dir / "db.sqlite3")) as database:
        assert database.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        users = database.execute("SELECT count(*) FROM accounts_user").fetchone()
    assert users == (DEMO_ACCOUNTS,)

    # and the worker e-mailed the demo's pending consent receipts into
    # var/mail/ (the embedded e-mail backend)
    mail_dir = var_dir / "mail"
    deadline = time.monotonic() + PING_TIMEOUT
    while len(list(mail_dir.glob("*.log"))) < DEMO_RECEIPTS:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    mails = sorted(mail_dir.glob("*.log"))
    assert len(mails) >= DEMO_RECEIPTS, log_path.read_text(errors="replace")
    assert "Your consent receipt" in mails[0].read_text()

    # and the demo partner's receiver, served by the web process, verified
    # and holds every demo track at its current consent version (the
    # decisions seed_demo made included): delivered by the worker
    expected = _demo_tracks(var_dir)
    deadline = time.monotonic() + PING_TIMEOUT
    while _received(var_dir) != expected and time.monotonic() < deadline:
        time.sleep(0.3)
    assert len(expected) == DEMO_TRACKS
    assert _received(var_dir) == expected, log_path.read_text(
        errors="replace"
    ) + web_log.read_text(errors="replace")

    # and the broker keeps all of its state under var/, none in the checkout
    assert (var_dir / "broker" / "control" / "celery.exchange").is_file()
    after = {name: _entries(checkout / name) for name in KOMBU_DEFAULT_FOLDERS}
    assert after == before
