"""Faults for the delivery benchmark: a flaky receiver, a Firestore link that drops, kills.

All on loopback. The receiver answers slowly, with 500, or not at all (down);
the proxy sits between the event function and the emulator and can cut every
connection for a while; a sink wrapper kills calls between claim and send; the
Eventarc stand-in delivers each CloudEvent at least once (sometimes twice) and
retries failed calls with backoff until the event's age runs out.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from diffio_progress.functions.events.outbox_event import OutboxEvent
from diffio_progress.functions.events.sinks import SendResult, Sink, SinkSession


@dataclass(frozen=True)
class Receipt:
    event_id: str
    event_type: str
    generation_id: str
    at: float  # time.monotonic() when the 2xx answer went out


@dataclass
class ReceiverFaults:
    slow: float = 0.0  # share of requests answered after ``slow_seconds``
    slow_seconds: float = 3.0
    errors: float = 0.0  # share answered 500
    down: list[tuple[float, float]] = field(default_factory=list)  # (start, end) monotonic
    gone: bool = False  # every request answered 410 Gone


class FlakyReceiver:
    """Records every 2xx it gives; misbehaves as ``faults`` says."""

    def __init__(self, faults: ReceiverFaults, rng: random.Random) -> None:
        self.faults = faults
        self.receipts: list[Receipt] = []
        self._lock = threading.Lock()
        self._rng = rng
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _decide(self) -> str:
        now = time.monotonic()
        if any(start <= now < end for start, end in self.faults.down):
            return "down"
        if self.faults.gone:
            return "gone"
        with self._lock:
            roll = self._rng.random()
        if roll < self.faults.errors:
            return "error"
        if roll < self.faults.errors + self.faults.slow:
            return "slow"
        return "ok"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                decision = receiver._decide()
                if decision == "down":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if decision == "slow":
                    time.sleep(receiver.faults.slow_seconds)
                status = {"error": 500, "gone": 410}.get(decision, 204)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    return  # the sender gave up (its deadline): not a delivery it saw
                if status == 204:
                    payload = json.loads(body)
                    receipt = Receipt(
                        self.headers.get("svix-id", ""),
                        payload["eventType"],
                        payload["generationId"],
                        time.monotonic(),
                    )
                    with receiver._lock:
                        receiver.receipts.append(receipt)

        return Handler


class LinkProxy:
    """A TCP proxy to ``upstream``; ``cut(seconds)`` drops every connection and refuses new ones."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._down_until = 0.0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    def cut(self, seconds: float) -> None:
        with self._lock:
            self._down_until = time.monotonic() + seconds
            dropped, self._open = self._open, set()
        for sock in dropped:
            _close(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if time.monotonic() < self._down_until:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    _close(source)
    _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class Killed(BaseException):
    """The instance died: no code of the call runs after this (no lease is released)."""


class KillingSink:
    """Wraps a sink; kills ``share`` of the calls after their claim, before anything is sent."""

    def __init__(self, inner: Sink, share: float, rng: random.Random) -> None:
        self.inner, self.share, self._rng = inner, share, rng
        self.name = inner.name
        self.killed = 0
        self._lock = threading.Lock()

    @property
    def deadline_seconds(self) -> float:
        return self.inner.deadline_seconds

    def session(self, api_key_id: str) -> SinkSession:
        inner = self.inner.session(api_key_id)
        sink = self

        class Session:
            def deliveries_for(self, event_type: str, now: datetime) -> dict[str, Any]:
                return inner.deliveries_for(event_type, now)

            def send(self, event: OutboxEvent, endpoint_ids: list[str]) -> list[SendResult]:
                with sink._lock:
                    if sink._rng.random() < sink.share:
                        sink.killed += 1
                        raise Killed
                return inner.send(event, endpoint_ids)

            def health_change(self, result: SendResult, now: datetime) -> dict[str, Any] | None:
                return inner.health_change(result, now)

        return Session()

    def close(self) -> None:
        self.inner.close()


class Eventarc:
    """At least once, in any order, retried with backoff until ``max_age`` (then given up)."""

    def __init__(
        self,
        handlers: Sequence[Callable[[Any], Any]],
        rng: random.Random,
        duplicates: float,
        max_age: float,
        workers: int = 32,
    ) -> None:
        self._handlers, self._rng = handlers, rng
        self._duplicates, self._max_age = duplicates, max_age
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="eventarc")
        self._futures: list[Future[None]] = []
        self._lock = threading.Lock()
        self.calls = self.failed_calls = self.given_up = 0

    def emit(self, event: Any) -> None:
        copies = 2 if self._pick() < self._duplicates else 1
        with self._lock:
            for _ in range(copies):
                self._futures.append(self._pool.submit(self._deliver, event, time.monotonic()))

    def wait(self) -> None:
        while True:
            with self._lock:
                pending = [f for f in self._futures if not f.done()]
            if not pending:
                break
            pending[0].result()
        self._pool.shutdown()

    def _pick(self) -> float:
        with self._lock:
            return self._rng.random()

    def _deliver(self, event: Any, born: float) -> None:
        pause = 0.5
        while True:
            handler = self._handlers[int(self._pick() * len(self._handlers))]
            with self._lock:
                self.calls += 1
            try:
                handler(event)
                return
            except (Exception, Killed):
                with self._lock:
                    self.failed_calls += 1
            if time.monotonic() - born > self._max_age:
                with self._lock:
                    self.given_up += 1
                return
            time.sleep(pause * (0.5 + self._pick()))
            pause = min(pause * 2, 4.0)
