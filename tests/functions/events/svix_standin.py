"""A local stand-in of the Svix API routes the ``svix`` library calls.

``POST /api/v1/app?get_if_exists=true`` (application get-or-create by ``uid``),
``GET /api/v1/app/{app}``, ``POST /api/v1/app/{app}/msg`` (message create), and
the endpoint routes: ``POST .../endpoint``, ``GET``/``PUT .../endpoint/{id or uid}``,
``GET .../secret`` and ``POST .../secret/rotate``; the delivery log's: ``GET .../msg``
(message.list), ``GET .../msg/{id or eventId}``, ``GET .../attempt/msg/{msg}``
(list_by_msg), ``GET .../endpoint/{ep}/msg`` (list_attempted_messages), ``POST
.../endpoint/{ep}/recover`` and ``POST .../msg/{msg}/endpoint/{ep}/resend``. Each message
is "attempted" at once to every enabled endpoint that takes its type, answered with
``deliveries_answer`` (an HTTP status). Svix's bearer-token check,
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
    attempts: list[dict[str, Any]] = field(default_factory=list)
    deliveries_answer: int = 200  # what every endpoint answers each attempt

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
                attempts=[],
                deliveries_answer=200,
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
                "tags": data.get("tags"),
                "timestamp": now,
            }
            self.messages.append({**message, "appId": app["id"]})
            for endpoint in self.endpoints.values():
                wanted = endpoint.get("filterTypes")
                if endpoint["appId"] == app["id"] and not endpoint.get("disabled"):
                    if not wanted or message["eventType"] in wanted:
                        self._attempt(message, endpoint["id"], 0)
            return 202, message
        if segments[:3] == ["api", "v1", "app"] and len(segments) >= 4:
            app = next((a for a in self.apps.values() if segments[3] in (a["id"], a["uid"])), None)
            if app is None:
                return 404, {"code": "not_found", "detail": "Application not found"}
            if method == "GET" and len(segments) == 4:
                return 200, app
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            logged = self._log_route(method, app, segments[4:], query, data, now)
            if logged is not None:
                return logged
            if segments[4:5] == ["endpoint"]:
                return self._endpoint(method, app, segments[5:], data, now)
        return 404, {"code": "not_found", "detail": f"no route {method} {parts.path}"}

    def _attempt(self, message: dict[str, Any], endpoint_id: str, trigger: int) -> None:
        code = self.deliveries_answer
        self.attempts.append(
            {
                "id": "atmpt_" + secrets.token_hex(8),
                "msgId": message["id"],
                "endpointId": endpoint_id,
                "response": json.dumps({"answered": code}),
                "responseDurationMs": 3,
                "responseStatusCode": code,
                "status": 0 if 200 <= code < 300 else 2,
                "statusText": "success" if 200 <= code < 300 else "fail",
                "timestamp": datetime.now(UTC).isoformat(),
                "triggerType": trigger,
                "url": "https://hooks.example.com/diffio?token=query-secret",
            }
        )

    def _log_route(
        self,
        method: str,
        app: dict[str, Any],
        rest: list[str],
        query: dict[str, str],
        data: dict[str, Any],
        now: str,
    ) -> tuple[int, dict[str, Any]] | None:
        """The delivery log's routes, or ``None`` when ``rest`` is none of them."""
        mine = [m for m in self.messages if m["appId"] == app["id"]]
        endpoint = next((e for e in self.endpoints.values() if rest[1:2] == [e["id"]]), None)
        if method == "GET" and rest == ["msg"]:
            return 200, _page([_public(m) for m in _filtered(mine, query)], query)
        if method == "GET" and len(rest) == 2 and rest[0] == "msg":
            found = next((m for m in mine if rest[1] in (m["id"], m["eventId"])), None)
            return (200, _public(found)) if found else (404, {"code": "not_found", "detail": ""})
        if method == "GET" and rest[:2] == ["attempt", "msg"] and len(rest) == 3:
            found = [a for a in self.attempts if a["msgId"] == rest[2]]
            return 200, _page(list(reversed(found)), query)
        if rest[:1] == ["endpoint"] and endpoint is not None and rest[2:] == ["msg"]:
            attempted = []
            for message in _filtered(mine, query):
                tried = [a for a in self.attempts if a["msgId"] == message["id"]]
                tried = [a for a in tried if a["endpointId"] == endpoint["id"]]
                if tried and query.get("status") in (None, str(tried[-1]["status"])):
                    status = tried[-1]["status"]
                    attempted.append({**_public(message), "status": status, "nextAttempt": None})
                    attempted[-1]["statusText"] = tried[-1]["statusText"]
            return 200, _page(attempted, query)
        if method == "POST" and endpoint is not None and rest[2:] == ["recover"]:
            for message in _filtered(mine, {"after": data["since"], "before": data.get("until")}):
                tried = [a for a in self.attempts if a["msgId"] == message["id"]]
                tried = [a for a in tried if a["endpointId"] == endpoint["id"]]
                if tried and tried[-1]["status"] == 2:
                    self._attempt(message, endpoint["id"], 1)
            task = {"id": "qtask_" + secrets.token_hex(8), "status": "finished"}
            return 202, {**task, "task": "endpoint.recover", "updatedAt": now}
        if method == "POST" and len(rest) == 5 and rest[0] == "msg" and rest[4] == "resend":
            message = next((m for m in mine if rest[1] in (m["id"], m["eventId"])), None)
            target = self.endpoints.get(rest[3])
            if message is None or target is None:
                return 404, {"code": "not_found", "detail": ""}
            self._attempt(message, target["id"], 1)
            return 202, {}
        return None

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


def _filtered(messages: list[dict[str, Any]], query: dict[str, Any]) -> list[dict[str, Any]]:
    """Newest first, within ``after``/``before`` and of ``event_types`` (comma-separated)."""
    types = set(query["event_types"].split(",")) if query.get("event_types") else None
    after, before = (
        datetime.fromisoformat(query[k]) if query.get(k) else None for k in ("after", "before")
    )
    chosen = [
        m
        for m in messages
        if (types is None or m["eventType"] in types)
        and (after is None or datetime.fromisoformat(m["timestamp"]) >= after)
        and (before is None or datetime.fromisoformat(m["timestamp"]) < before)
    ]
    return list(reversed(chosen))


def _page(items: list[dict[str, Any]], query: dict[str, Any]) -> dict[str, Any]:
    """Svix's list answer: ``limit`` items from after the ``iterator`` (an item id)."""
    start = 0
    if query.get("iterator"):
        ids = [item["id"] for item in items]
        start = ids.index(query["iterator"]) + 1 if query["iterator"] in ids else len(ids)
    limit = int(query.get("limit") or 50)
    chosen = items[start : start + limit]
    done = start + limit >= len(items)
    iterator = chosen[-1]["id"] if chosen and not done else None
    return {"data": chosen, "done": done, "iterator": iterator, "prevIterator": None}


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
