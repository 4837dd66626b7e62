"""A real local HTTP receiver for webhook deliveries (no mock of the network).

``http.server`` in a thread on 127.0.0.1 and a free port: it records every
request (headers and body) and answers from a script of responses (status and
headers), the last one repeated. Tests that send to it turn
``REFRAIN_WEBHOOK_ALLOW_PRIVATE`` on, as the settings document for tests.
"""

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)

    def tracks(self) -> list[dict]:
        return self.json()["data"]["tracks"]

    def verify(self, secret: str) -> dict:
        """Verify the signature with the Standard Webhooks reference library
        (raises ``WebhookVerificationError`` when it does not match)."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    port: int
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Called (in the server's thread) before each answer: what happens while
    # a runner waits for it.
    on_request: Callable[[], None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def answer(self, *statuses: int | tuple[int, dict[str, str]]) -> None:
        """Answer the next requests with these statuses (or (status, headers));
        the last one is repeated."""
        with self.lock:
            self.answers = [
                item if isinstance(item, tuple) else (item, {}) for item in statuses
            ]

    def next_answer(self) -> tuple[int, dict[str, str]]:
        with self.lock:
            if not self.answers:
                return 204, {}
            if len(self.answers) > 1:
                return self.answers.pop(0)
            return self.answers[0]


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with receiver.lock:
                receiver.received.append(
                    Received(
                        self.path,
                        {key.lower(): value for key, value in self.headers.items()},
                        body,
                    )
                )
            if receiver.on_request is not None:
                receiver.on_request()
            status, headers = receiver.next_answer()
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):  # quiet test output
            pass

    return Handler


class running_receiver:  # noqa: N801 - used as a context manager
    def __enter__(self) -> Receiver:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), None)
        self.receiver = Receiver(self.server.server_address[1])
        self.server.RequestHandlerClass = _handler(self.receiver)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self.receiver

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
