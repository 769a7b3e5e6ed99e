"""Local webhook receivers for the tests: well-behaved, or hanging, trickling, failing, moving."""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# How a receiver answers: "ok" (204), "slow:<seconds>" (204 after that long), "status:<code>",
# "redirect", "hang", "hold" (204 once ``hold_until`` is set), "trickle", "close".
Behaviour = str


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers as ``behaviour`` says."""

    behaviour: Behaviour = "ok"
    received: list[Received] = field(default_factory=list)
    redirect_to: str = "http://127.0.0.1:9/elsewhere"
    stopping: threading.Event = field(default_factory=threading.Event)
    tls: ssl.SSLContext | None = None  # serve https with this server context
    host: str = "127.0.0.1"  # the host name the URL uses
    arrived: threading.Event = field(default_factory=threading.Event)  # set by each POST
    hold_until: threading.Event | None = None  # what a "hold" receiver waits for
    # Sent with a "status:<code>" answer (a Retry-After, say), and its body.
    answer_headers: dict[str, str] = field(default_factory=dict)
    answer_body: bytes = b""

    def __post_init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host}:{self._server.server_address[1]}/hooks/diffio"

    def record(self, item: Received) -> None:
        with self._lock:
            self.received.append(item)
        self.arrived.set()

    @property
    def ids(self) -> list[str]:
        """The ``svix-id`` of every request received, in order."""
        return [r.headers.get("svix-id", "") for r in self.received]

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()


def _make_handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            receiver.record(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            behaviour = receiver.behaviour
            if behaviour == "ok":
                self._answer(204)
            elif behaviour.startswith("slow:"):
                receiver.stopping.wait(float(behaviour.split(":", 1)[1]))
                self._answer(204)
            elif behaviour.startswith("status:"):
                code = int(behaviour.split(":", 1)[1])
                self._answer(code, receiver.answer_headers, receiver.answer_body)
            elif behaviour == "redirect":
                self._answer(307, {"Location": receiver.redirect_to})
            elif behaviour == "hold" and receiver.hold_until is not None:
                receiver.hold_until.wait(30)
                self._answer(204)
            elif behaviour == "hang":
                receiver.stopping.wait(30)
            elif behaviour == "trickle":
                self._trickle()
            elif behaviour == "close":
                self.close_connection = True
                self.connection.shutdown(2)

        def _answer(
            self, status: int, headers: dict[str, str] | None = None, body: bytes = b""
        ) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _trickle(self) -> None:
            # A 200 that arrives one byte at a time: each byte well within any per-read
            # timeout, the whole far beyond the delivery's deadline.
            head = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"." * 60 + b"\r\nContent-Length: 0\r\n\r\n"
            for byte in head:
                if receiver.stopping.wait(0.2):
                    return
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:
                    return
            time.sleep(0)

    return Handler
