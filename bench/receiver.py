"""A partner's webhook endpoint for the propagation benchmarks, in a process
of its own: ``python bench/receiver.py PORT SECRET [SECRET ...]``.

``POST /hook/<n>`` is verified with the n-th secret and applied only forward by
``consent.propagation.receiver.receiver_apply`` (the one definition of
"received correctly", as the demo's receiver and the tests use it).
``GET /stats`` answers the counts as JSON; ``POST /status/<n>?code=503``
makes hook n answer that status (an outage) until ``code=0``.
"""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")

import django  # noqa: E402

django.setup()

from consent.propagation.receiver import receiver_apply  # noqa: E402


def serve(port: int, secrets: list[str]) -> None:
    lock = threading.Lock()
    stores: list[dict] = [{} for _ in secrets]
    forced: list[int] = [0 for _ in secrets]
    stats = {"requests": 0, "statuses": {}, "tracks": [0 for _ in secrets]}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802 - http.server's name
            with lock:
                body = json.dumps(stats).encode()
            self._answer(200, body)

        def do_POST(self):  # noqa: N802 - http.server's name
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            kind, _, number = parts.path.strip("/").partition("/")
            index = int(number)
            if kind == "status":
                forced[index] = int(parse_qs(parts.query)["code"][0])
                self._answer(200, b"{}")
                return
            with lock:
                if forced[index]:
                    status, words = forced[index], "outage"
                else:
                    status, words = receiver_apply(
                        stores[index], body, dict(self.headers), secrets[index]
                    )
                    stats["tracks"][index] += body.count('"consent_version"')
                stats["requests"] += 1
                key = str(status)
                stats["statuses"][key] = stats["statuses"].get(key, 0) + 1
            self._answer(status, json.dumps({"result": words}).encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2:])
