"""The harness of the fault drills: real processes of the test's own.

* ``Workers``: Celery workers in subprocesses (own session each), on the test
  database and a broker of the test's own; each stopped or killed by its pid.
* ``OwnRedis``: a ``redis-server`` of the test's own on a free port, without
  persistence, so ``restart()`` brings it back empty.
* ``Receiver``: a partner's webhook endpoint, a real HTTP server in a thread
  of the test process, that verifies each request with the Standard Webhooks
  reference library and applies each track's state only forward.
* ``Beat``: what ``celery beat`` does for the drills, rung by the test itself
  (a sweep every ``interval`` seconds), so a drill controls when sweeps happen.

Everything here is started by the test and stopped by its own pid, also when
the test fails; nothing shared (the suite's PostgreSQL and Redis) is touched.
"""

import copy
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.conf import settings as django_settings
from django.db import connection

from consent.propagation.receiver import receiver_apply

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
WAIT = 60.0  # seconds, for any one step (a worker starting, a drill converging)

# What the drills shrink, in the workers' settings: retries in tenths of a
# second instead of minutes, a lease that runs out soon after a kill, and the
# local receiver allowed. Receipts wait for the end of a burst (beat's
# sweep, no doorbell per change): a worker that e-mails a thousand receipts
# one by one between two kills would never reach the deliveries, and
# receipts are not what the drills are about.
DRILL_SETTINGS = {
    "REFRAIN_RECEIPT_BURST_MINUTES": 3.0,
    "REFRAIN_DELIVERY_LEASE_SECONDS": 2.0,
    "REFRAIN_DELIVERY_RUN_SECONDS": 5.0,
    "REFRAIN_WEBHOOK_RETRY_SCHEDULE": [0.2, 0.4, 0.8, 1.6],
    "REFRAIN_WEBHOOK_PROBE_SECONDS": 5.0,
    "REFRAIN_WEBHOOK_TIMEOUT_SECONDS": 5.0,
    "REFRAIN_WEBHOOK_ALLOW_PRIVATE": True,
    "REFRAIN_PROPAGATION_SWEEP_SECONDS": 0.5,
}


def free_port() -> int:
    """A local port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Workers:
    """Celery workers in subprocesses of their own (own session), on the test
    database and this test's private queue; each stopped or killed by its own
    pid, never by name.

    ``--pool=solo``: the worker is one process, so SIGKILL of its process
    group kills exactly what ran the task (no prefork parent left to start a
    child again), and one task runs at a time, as with ``--concurrency=1``.
    """

    def __init__(
        self,
        tmp_path: Path,
        database: dict,
        broker: tuple[str, dict],
        extra: dict | None = None,
    ):
        self.tmp_path = tmp_path
        self.processes: list[tuple[subprocess.Popen, Path]] = []
        url, options = broker
        module = tmp_path / "drill_settings.py"
        lines = [
            "import json\n",
            "from config.settings.test import *  # noqa: F403\n",
            f"DATABASES = json.loads({json.dumps(json.dumps({'default': database}))})",
            f"CELERY_BROKER_URL = {url!r}",
            "CELERY_BROKER_TRANSPORT_OPTIONS = "
            f"json.loads({json.dumps(json.dumps(options))})",
        ]
        lines += [f"{name} = {value!r}" for name, value in (extra or {}).items()]
        module.write_text("\n".join(lines) + "\n")
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "drill_settings",
            "PYTHONPATH": os.pathsep.join(
                [str(tmp_path), str(django_settings.BASE_DIR)]
            ),
            "REFRAIN_VAR_DIR": str(tmp_path / "var"),
            "PYTHONUNBUFFERED": "1",
        }

    def start(self, *, pool: str = "solo", concurrency: int = 1) -> subprocess.Popen:
        number = len(self.processes)
        log_path = self.tmp_path / f"worker-{number}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "config", "worker",
                    f"--pool={pool}", f"--concurrency={concurrency}", "--loglevel=INFO",
                    "--without-heartbeat", "--without-gossip", "--without-mingle",
                    f"--hostname=drill{number}-{os.getpid()}@%h",
                ],
                cwd=django_settings.BASE_DIR,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.processes.append((process, log_path))
        return process

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name} ---\n{path.read_text(errors='replace')[-4000:]}"
            for _, path in self.processes
        )

    def start_ready(self, **start) -> subprocess.Popen:
        """Start a worker and wait until it consumes."""
        process = self.start(**start)
        wait_for(lambda: self.is_ready(process), "a ready worker", self)
        return process

    def is_ready(self, process: subprocess.Popen) -> bool:
        """Whether the worker says it is ready (consuming)."""
        return " ready." in self.log_of(process, self)

    @staticmethod
    def log_of(process: subprocess.Popen, workers: "Workers") -> str:
        for started, path in workers.processes:
            if started is process:
                return path.read_text(errors="replace")
        return ""

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=WAIT)

    def stop_all(self) -> None:
        for process, _ in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGCONT)  # in case a drill paused it
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.kill(process)


def wait_for(
    condition: Callable, what: str, workers: Workers | None, *, timeout: float = WAIT
):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    logs = workers.logs() if workers else ""
    raise AssertionError(f"no {what} after {timeout}s\n{logs}")


def database_for_workers(tmp_path) -> tuple[dict, Path | None]:
    """The test database as a worker process can open it: PostgreSQL's as it
    is (the test is transactional, so its rows are committed); SQLite's, which
    lives in this process's memory, copied to a file (and copied back by the
    test once the workers are done, or shared with ``sqlite_file_shared``)."""
    database = {
        name: value
        for name, value in connection.settings_dict.items()
        if name in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
    }
    if connection.vendor != "sqlite":
        return database, None
    sqlite_file = tmp_path / "db.sqlite3"
    connection.ensure_connection()
    with closing(sqlite3.connect(sqlite_file)) as copy:
        connection.connection.backup(copy)
    database["NAME"] = str(sqlite_file)
    return database, sqlite_file


@contextmanager
def sqlite_file_shared(sqlite_file: Path | None) -> Iterator[None]:
    """Inside the block, this process's connection reads and writes the
    workers' SQLite file (the in-memory test database is set aside, not
    closed: closing it would drop it). Nothing to do on PostgreSQL."""
    if sqlite_file is None:
        yield
        return
    connection.ensure_connection()
    in_memory = connection.connection
    params = connection.get_connection_params()
    params["database"] = str(sqlite_file)
    params["uri"] = False
    connection.connection = connection.get_new_connection(params)
    connection._set_autocommit(True)
    try:
        yield
    finally:
        connection.connection.close()
        connection.connection = in_memory


class OwnRedis:
    """A ``redis-server`` of the test's own: no snapshots, no append-only
    file, so a restart starts empty. Killed only by its own pid."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.tmp_path = tmp_path
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def broker(self) -> tuple[str, dict]:
        return self.url, {"visibility_timeout": 3600, "socket_connect_timeout": 2}

    def start(self) -> None:
        log_path = self.tmp_path / f"redis-{self.starts}.log"
        self.starts += 1
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", str(self.tmp_path),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        wait_for(self.ping, f"redis-server on port {self.port}", None, timeout=15)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def keys(self) -> int:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(b"DBSIZE\r\n")
            return int(s.recv(64).strip().lstrip(b":"))

    def queued(self) -> int:
        """Messages waiting in the default queue or taken and not acked."""
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            return client.llen("celery") + client.hlen("unacked")
        finally:
            client.close()

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=15)

    def restart(self) -> None:
        """Kill it (SIGKILL, by pid) and start it again, empty, on the same
        port."""
        self.stop()
        self.start()


@dataclass
class Request:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int
    at: float  # time.time() when it arrived
    verified: bool
    error: str = ""


@dataclass
class Receiver:
    """A partner's endpoint: verifies, applies forward only, records all.

    Verifying and applying are ``receiver_apply``'s (the demo's receiver and
    the tests share that one definition). ``secret`` must be set before
    requests arrive. ``held`` maps a track's public id to the highest
    ``consent_version`` received and its eligibility; an older one is ignored
    and counted in ``ignored_older``; the same version with a different
    eligibility (two states under one version) in ``conflicts``. ``script``
    holds answers for the next requests (status, headers), then ``always``
    (if set), else 200; a request answered with an error applies nothing."""

    secret: str = ""
    store: dict = field(default_factory=dict)
    ignored_older: int = 0
    duplicates: int = 0
    conflicts: list = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    script: list[tuple[int, dict]] = field(default_factory=list)
    always: tuple[int, dict] | None = None
    seen_ids: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def held(self) -> dict[str, tuple[int, dict]]:
        with self.lock:
            return {k: (v["version"], v["eligible"]) for k, v in self.store.items()}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, extra = receiver.answer(self.path, headers, body)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def answer(self, path: str, headers: dict, body: bytes) -> tuple[int, dict]:
        with self.lock:
            scripted = self.script[0] if self.script else self.always
            status, extra = scripted or (200, {})
            accept = 200 <= status < 300
            # An error answer applies nothing: verified against a copy.
            target = self.store if accept else copy.deepcopy(self.store)
            tally: dict = {}
            verdict, words = receiver_apply(
                target, body.decode(), headers, self.secret, tally
            )
            if verdict != 200:
                self.requests.append(
                    Request(path, headers, body, verdict, time.time(), False, words)
                )
                return verdict, {}
            if self.script:
                self.script.pop(0)
            if accept:
                if headers["webhook-id"] in self.seen_ids:
                    self.duplicates += 1
                self.seen_ids.add(headers["webhook-id"])
                self.ignored_older += tally["older"]
                self.conflicts.extend(tally["conflicts"])
            self.requests.append(
                Request(path, headers, body, status, time.time(), True)
            )
            return status, extra

    def post(self, body: bytes, headers: dict[str, str]) -> int:
        """Send a request to this receiver as the test (a replay, a forgery);
        returns the status it answered."""
        import urllib3

        response = urllib3.request(
            "POST", self.url, body=body, headers=headers, retries=False
        )
        return response.status

    def answered(self, status: int | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if status is None or r.status == status]


class Relay:
    """Workers that are SIGKILLed every ``every`` seconds of their working
    life and replaced: a successor starts as soon as the current worker is
    ready, so the kills land while work flows (a worker takes a second or
    two to start)."""

    def __init__(self, workers: Workers, every: float, **start):
        self.workers, self.every, self.start = workers, every, start
        self.current = workers.start(**start)
        self.ready_at: float | None = None
        self.successor: subprocess.Popen | None = None
        self.kills = 0

    def step(self) -> None:
        now = time.monotonic()
        if self.ready_at is None:
            if not self.workers.is_ready(self.current):
                return
            self.ready_at = now
            self.successor = self.workers.start(**self.start)
        if now - self.ready_at >= self.every:
            self.workers.kill(self.current)
            self.kills += 1
            self.current, self.successor, self.ready_at = self.successor, None, None


class Beat:
    """``celery beat``'s part in a drill: ``tick()`` rings the propagation
    sweep when ``interval`` seconds have passed since the last ring (as the
    schedule would with ``REFRAIN_PROPAGATION_SWEEP_SECONDS``)."""

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self.last = float("-inf")
        self.rung = 0

    def tick(self) -> None:
        from config.doorbell import ring
        from consent.tasks import sweep_propagation

        if time.monotonic() - self.last >= self.interval:
            self.last = time.monotonic()
            if ring(sweep_propagation):
                self.rung += 1

    def until(self, condition: Callable, what: str, workers: Workers, timeout=WAIT):
        def ticked():
            self.tick()
            return condition()

        return wait_for(ticked, what, workers, timeout=timeout)
