"""A local stand-in for the Cloud Run Admin API v2 REST surface: scripted executions over HTTP.

It answers ``GET /v2/projects/{p}/locations/{r}/jobs/{j}/executions/{e}`` with
the REST/JSON mapping of ``google.cloud.run.v2.Execution`` (camelCase), so the
real ``run_v2.ExecutionsClient`` (REST transport, ``http://`` endpoint,
anonymous credentials) can talk to it. Each execution is scripted with a list
of replies (the last one repeats), and every request is counted per path.

Another process (the simulator of ``make run``'s world) flips an execution's
state through the control route, ``PUT /control/v2/{execution name}`` with
``{"state": "FAILED", "message": "..."}``: see ``set_state``.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote, urlsplit

_PREFIX = "/v2/"
_CONTROL = "/control/v2/"
_STATUS_NAMES = {
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass(frozen=True)
class Reply:
    """One scripted answer: an HTTP status and JSON body, optionally after a hang."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    hang_seconds: float = 0.0


def execution_name(execution: str, job: str = "worker", project: str = "diffio-test") -> str:
    return f"projects/{project}/locations/us-central1/jobs/{job}/executions/{execution}"


def _execution(
    name: str,
    completed: str,
    message: str,
    *,
    running: int = 0,
    succeeded: int = 0,
    failed: int = 0,
    cancelled: int = 0,
) -> dict[str, Any]:
    """An Execution as the Admin API v2 returns it (the fields the lookup reads, and some)."""
    return {
        "name": name,
        "uid": "3f2a7c1e-0000-4000-8000-000000000000",
        "job": name.split("/")[5],
        "taskCount": 1,
        "parallelism": 1,
        "conditions": [
            {
                "type": "ResourcesAvailable",
                "state": "CONDITION_SUCCEEDED",
                "lastTransitionTime": "2026-01-01T00:00:01Z",
            },
            {
                "type": "Completed",
                "state": completed,
                "message": message,
                "lastTransitionTime": "2026-01-01T00:00:02Z",
            },
        ],
        "runningCount": running,
        "succeededCount": succeeded,
        "failedCount": failed,
        "cancelledCount": cancelled,
        "logUri": "https://console.cloud.google.com/logs",
        "etag": '"abc"',
    }


def succeeded(name: str) -> Reply:
    return Reply(200, _execution(name, "CONDITION_SUCCEEDED", "Execution completed", succeeded=1))


def failed(name: str, message: str = "Task worker-0 exited with code 137: out of memory") -> Reply:
    return Reply(200, _execution(name, "CONDITION_FAILED", message, failed=1))


def cancelled(name: str, message: str = "The execution was cancelled") -> Reply:
    return Reply(200, _execution(name, "CONDITION_FAILED", message, cancelled=1))


def running(name: str) -> Reply:
    return Reply(200, _execution(name, "CONDITION_RECONCILING", "Tasks are running", running=1))


def pending(name: str) -> Reply:
    return Reply(200, _execution(name, "CONDITION_PENDING", "Waiting for resources"))


def http_error(status: int, message: str = "scripted error") -> Reply:
    """A Google JSON error body, as the API sends with 4xx/5xx."""
    error = {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}
    return Reply(status, {"error": error})


def slow(reply: Reply, seconds: float) -> Reply:
    """``reply``, after saying nothing for ``seconds``."""
    return Reply(reply.status, reply.body, hang_seconds=seconds)


def hang(name: str) -> Reply:
    """Say nothing for far longer than any deadline (until the stand-in stops)."""
    return slow(running(name), 60.0)


# What the control route accepts: the contract's jobState names.
STATES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")


def reply_for(name: str, state: str, message: str | None = None) -> Reply:
    """Execution ``name`` in ``state``; ``message`` is a failure's ``Completed`` message."""
    if state == "FAILED":
        return failed(name, message) if message else failed(name)
    if state == "CANCELLED":
        return cancelled(name, message) if message else cancelled(name)
    return {"PENDING": pending, "RUNNING": running, "SUCCEEDED": succeeded}[state](name)


def set_state(host_port: str, name: str, state: str, message: str | None = None) -> None:
    """Make the stand-in at ``host_port`` report execution ``name`` in ``state`` from now on.

    Raises ``OSError`` (``urllib.error.URLError``) when the stand-in is not there.
    """
    body = json.dumps({"state": state, "message": message}).encode()
    request = urllib.request.Request(
        f"http://{host_port}{_CONTROL}{quote(name)}", data=body, method="PUT"
    )
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=5):
        pass


class CloudRunStandIn:
    """A threaded HTTP server on 127.0.0.1 with scripted executions; use as a context manager."""

    def __init__(self) -> None:
        self._scripts: dict[str, list[Reply]] = {}
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def host_port(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def script(self, name: str, *replies: Reply) -> str:
        """Answer GETs of execution ``name`` with ``replies`` in turn (the last repeats)."""
        with self._lock:
            self._scripts[name] = list(replies)
        return name

    def requests(self, name: str) -> int:
        """How many GETs the execution ``name`` has received."""
        with self._lock:
            return self._counts[_PREFIX + name]

    def total_requests(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def start(self) -> CloudRunStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # release hung requests first, so shutdown does not wait on them
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> CloudRunStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            self._counts[path] += 1
            script = self._scripts.get(path.removeprefix(_PREFIX))
            if not script:
                return http_error(404, f"Resource '{path}' was not found")
            return script.pop(0) if len(script) > 1 else script[0]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_PUT(self) -> None:
                path = urlsplit(self.path).path
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    order = json.loads(self.rfile.read(length))
                    state, message = order["state"], order.get("message")
                    if not path.startswith(_CONTROL) or state not in STATES:
                        raise ValueError(state)
                    if not isinstance(message, str | None):
                        raise TypeError(message)
                except (ValueError, KeyError, TypeError):
                    states = ", ".join(STATES)
                    self._send(http_error(400, f"PUT {_CONTROL}{{name}} {{state: {states}}}"))
                    return
                name = unquote(path.removeprefix(_CONTROL))
                standin.script(name, reply_for(name, state, message))
                self._send(Reply(200, {"name": name, "state": state}))

            def do_GET(self) -> None:
                reply = standin._next_reply(urlsplit(self.path).path)
                if reply.hang_seconds and standin._stopping.wait(reply.hang_seconds):
                    self.close_connection = True  # stopping: drop the request unanswered
                    return
                self._send(reply)

            def _send(self, reply: Reply) -> None:
                data = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        return Handler
