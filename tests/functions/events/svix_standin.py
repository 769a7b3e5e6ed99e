"""A local stand-in of the Svix API routes the ``svix`` library calls.

``POST /api/v1/app?get_if_exists=true`` (application get-or-create by ``uid``),
``GET /api/v1/app/{app}``, ``POST /api/v1/app/{app}/msg`` (message create), and
the endpoint routes: ``POST .../endpoint``, ``GET``/``PUT .../endpoint/{id or uid}``,
``GET .../secret`` and ``POST .../secret/rotate``. Svix's bearer-token check,
idempotency keys (the same key answers the first response again), the 409 for a
second message with the same ``eventId`` or a second endpoint with the same uid.
Each token is its own environment (``other_tokens``: e.g. the test environment).
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
    fail_endpoints_with: int | None = None  # answer every endpoint write with this status
    # Another environment per extra token (the test environment's, say): its own apps.
    other_tokens: tuple[str, ...] = ()
    environments: dict[str, SvixStandIn] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)  # endpoint id -> endpoint
    secrets: dict[str, list[str]] = field(default_factory=dict)  # endpoint id -> newest last

    def __post_init__(self) -> None:
        self.environments = {self.token: self}
        for other in self.other_tokens:
            self.environments[other] = SvixStandIn.__new__(SvixStandIn)
            self.environments[other].__dict__.update(
                token=other,
                apps={},
                messages=[],
                calls=[],
                endpoints={},
                secrets={},
                fail_messages_with=None,
                fail_endpoints_with=None,
            )
        self._lock = threading.Lock()
        self._idempotent: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
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
            token = (headers.get("authorization") or "").removeprefix("Bearer ")
            environment = self.environments.get(token)
            if environment is None:
                return 401, {"code": "authentication_failed", "detail": "Invalid token"}
            key = headers.get("idempotency-key")
            if key and (token, key) in self._idempotent:
                return self._idempotent[(token, key)]
            answer = environment._route(method, target, json.loads(body or b"{}"))
            if environment is not self:
                environment.calls.append((method, target, headers))
            if key and answer[0] < 500:
                self._idempotent[(token, key)] = answer
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
        if segments[:3] == ["api", "v1", "app"] and len(segments) >= 4:
            app = next((a for a in self.apps.values() if segments[3] in (a["id"], a["uid"])), None)
            if app is None:
                return 404, {"code": "not_found", "detail": "Application not found"}
            if method == "GET" and len(segments) == 4:
                return 200, app
            if segments[4:5] == ["endpoint"]:
                return self._endpoint(method, app, segments[5:], data, now)
        return 404, {"code": "not_found", "detail": f"no route {method} {parts.path}"}

    def _endpoint(
        self, method: str, app: dict[str, Any], rest: list[str], data: dict[str, Any], now: str
    ) -> tuple[int, dict[str, Any]]:
        mine = [e for e in self.endpoints.values() if e["appId"] == app["id"]]
        found = next((e for e in mine if rest and rest[0] in (e["id"], e["uid"])), None)
        writing = method in ("POST", "PUT") and rest[1:] != ["secret"]
        if writing and self.fail_endpoints_with is not None:
            return self.fail_endpoints_with, {"code": "server_error", "detail": "down"}
        if method == "POST" and not rest:
            if any(e["uid"] == data.get("uid") for e in mine):
                return 409, {"code": "conflict", "detail": "uid already exists"}
            endpoint = {
                "id": "ep_" + secrets.token_hex(8),
                "appId": app["id"],
                "description": "",
                "metadata": {},
                "version": 1,
                "createdAt": now,
                **data,
                "updatedAt": now,
            }
            self.endpoints[endpoint["id"]] = endpoint
            self.secrets[endpoint["id"]] = ["whsec_" + _b64(secrets.token_bytes(24))]
            return 201, _public(endpoint)
        if found is None:
            return 404, {"code": "not_found", "detail": "Endpoint not found"}
        if method == "GET" and len(rest) == 1:
            return 200, _public(found)
        if method == "PUT" and len(rest) == 1:
            found.update(data, updatedAt=now)
            return 200, _public(found)
        if method == "GET" and rest[1:] == ["secret"]:
            return 200, {"key": self.secrets[found["id"]][-1]}
        if method == "POST" and rest[1:] == ["secret", "rotate"]:
            self.secrets[found["id"]].append("whsec_" + _b64(secrets.token_bytes(24)))
            return 204, {}
        return 404, {"code": "not_found", "detail": "no such endpoint route"}


def _public(endpoint: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in endpoint.items() if k != "appId"}


def _b64(raw: bytes) -> str:
    import base64

    return base64.b64encode(raw).decode()


def _make_handler(standin: SvixStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self._serve("POST")

        def do_GET(self) -> None:
            self._serve("GET")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer = standin.handle(method, self.path, headers, body)
            data = json.dumps(answer).encode() if status != 204 else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
