"""A local webhook receiver: verifies each delivery with the official SDK, then reports it.

What a client's server does with a status-change event, runnable on a laptop:
`python -m diffio_progress webhooks listen --port 8090` alone, and inside `run`
beside the progress bars. An unverifiable delivery is answered 401 and reported.
Delivery is at least once, so, as a client should, it acknowledges a repeated
``eventId`` without handling the event again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A delivery larger than this is not one of ours.
MAX_BODY_BYTES = 1 << 20
# How many eventIds are remembered to recognise a repeated delivery.
REMEMBERED_EVENTS = 10_000


class WebhookReceiver:
    """An HTTP server on ``host:port`` (0: any free port) for status-change events."""

    def __init__(
        self,
        secret: str,
        on_event: Callable[[Any, datetime], None],
        on_refused: Callable[[str], None],
        host: str = "127.0.0.1",
        port: int = 0,
        on_repeat: Callable[[Any], None] | None = None,
    ) -> None:
        self._webhooks: Any = None
        self._sdk_ready = threading.Lock()
        self._secret = secret
        self.on_event = on_event
        self.on_refused = on_refused
        self.on_repeat = on_repeat
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}/webhooks/diffio"

    def use_secret(self, secret: str) -> None:
        """Verify from now on with ``secret`` (the one a configure call just returned)."""
        self._secret = secret

    def start(self) -> WebhookReceiver:
        self._thread.start()
        # The SDK takes a second or more to import: not on the caller's time.
        threading.Thread(target=self.sdk, name="webhook-sdk-import", daemon=True).start()
        return self

    def sdk(self) -> Any:
        """The official SDK's webhooks client (what a client's server would use)."""
        with self._sdk_ready:
            if self._webhooks is None:
                from diffio import DiffioClient  # dev-only, like tools/

                # verify_signature needs a client object; no request is ever made with it.
                client = DiffioClient(apiKey="unused", baseUrl="http://127.0.0.1:9/v1")
                self._webhooks = client.webhooks
        return self._webhooks

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def receive(self, body: bytes, headers: dict[str, str]) -> int:
        """Verify one delivery; the status to answer."""
        from diffio import DiffioApiError

        try:
            event = self.sdk().verify_signature(payload=body, headers=headers, secret=self._secret)
        except DiffioApiError as refused:
            self.on_refused(f"refused a delivery: {refused}")
            return 401
        if self._repeated(event.eventId):
            if self.on_repeat is not None:
                self.on_repeat(event)
            return 204
        self.on_event(event, datetime.now(UTC))
        return 204

    def _repeated(self, event_id: str) -> bool:
        with self._seen_lock:
            if event_id in self._seen:
                return True
            self._seen[event_id] = None
            if len(self._seen) > REMEMBERED_EVENTS:
                self._seen.popitem(last=False)
            return False


def describe(event: Any) -> str:
    """One line for a verified event, for a terminal."""
    line = f"{event.eventType:<22} {event.generationId} ({event.apiProjectId}) {event.status}"
    if event.error:
        line += f": {event.error}"
        if event.errorDetails:
            line += f" ({event.errorDetails})"
    return f"{line}  [{event.eventId}, verified]"


def describe_repeat(event: Any) -> str:
    return f"repeat of {event.eventId} ({event.eventType}, {event.generationId}): ignored"


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the receiver reports events, not HTTP lines

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._answer(413)
                return
            body = self.rfile.read(length)
            self._answer(receiver.receive(body, dict(self.headers.items())))

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler
