"""A real local HTTP receiver for webhook tests: it verifies each request with
``consent.propagation.receiver.receiver_apply`` (the Standard Webhooks
reference library) and applies versions only forward, or answers a fixed
status to play a failing partner."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from consent.propagation.receiver import receiver_apply


class Receiver:
    def __init__(self, secret: str = "", status: int | None = None):
        self.secret = secret
        self.status = status  # a fixed answer instead of verifying
        self.store: dict = {}
        self.answers: list[tuple[int, str]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length).decode()
                with receiver.lock:
                    if receiver.status is not None:
                        status, words = receiver.status, "fixed answer"
                    else:
                        status, words = receiver_apply(
                            receiver.store, body, dict(self.headers), receiver.secret
                        )
                    receiver.answers.append((status, words))
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(words.encode())

            def log_message(self, *args):
                pass

        return Handler

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
