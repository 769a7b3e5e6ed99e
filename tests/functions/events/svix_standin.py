"""A local stand-in of the Svix API routes the ``svix`` library calls to deliver a message.

``POST /api/v1/app?get_if_exists=true`` (application get-or-create by ``uid``) and
``POST /api/v1/app/{app}/msg`` (message create), with Svix's bearer-token check,
idempotency keys (the same key answers the first response again) and the 409
for a second message with the same ``eventId``.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class SvixStandIn:
    token: str
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> application
    messages: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    fail_messages_with: int | None = None  # answer every message.create with this status

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._idempotent: dict[str, tuple[int, dict[str, Any]]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.calls.append((method, target, headers))
            if headers.get("authorization") != f"Bearer {self.token}":
                return 401, {"code": "authentication_failed", "detail": "Invalid token"}
            key = headers.get("idempotency-key")
            if key and key in self._idempotent:
                return self._idempotent[key]
            answer = self._route(method, target, json.loads(body or b"{}"))
            if key and answer[0] < 500:
                self._idempotent[key] = answer
            return answer

    def _route(self, method: str, target: str, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(target)
        segments = parts.path.strip("/").split("/")
        now = datetime.now(UTC).isoformat()
        if method == "POST" and segments == ["api", "v1", "app"]:
            if parse_qs(parts.query).get("get_if_exists") != ["true"]:
                return 400, {"code": "bad_request", "detail": "expected get_if_exists"}
            uid = data.get("uid")
            if uid in self.apps:
                return 200, self.apps[uid]
            app = {
                "id": "app_" + secrets.token_hex(8),
                "uid": uid,
                "name": data["name"],
                "metadata": {},
                "createdAt": now,
                "updatedAt": now,
            }
            self.apps[uid] = app
            return 201, app
        if method == "POST" and segments[:3] == ["api", "v1", "app"] and segments[4:] == ["msg"]:
            app = next((a for a in self.apps.values() if segments[3] in (a["id"], a["uid"])), None)
            if app is None:
                return 404, {"code": "not_found", "detail": "Application not found"}
            if self.fail_messages_with is not None:
                return self.fail_messages_with, {"code": "server_error", "detail": "down"}
            event_id = data.get("eventId")
            if any(m["appId"] == app["id"] and m["eventId"] == event_id for m in self.messages):
                return 409, {"code": "conflict", "detail": "Duplicate eventId"}
            message = {
                "id": "msg_" + secrets.token_hex(8),
                "eventType": data["eventType"],
                "eventId": event_id,
                "payload": data["payload"],
                "timestamp": now,
            }
            self.messages.append({**message, "appId": app["id"]})
            return 202, message
        return 404, {"code": "not_found", "detail": f"no route {method} {parts.path}"}


def _make_handler(standin: SvixStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer = standin.handle("POST", self.path, headers, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
