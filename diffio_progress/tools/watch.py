"""Poll the progress endpoint over HTTP like any client until the generation finishes."""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

from .firestore_connection import CliError
from .watch_views import JsonView, RichView, View

DEFAULT_URL = "http://127.0.0.1:8080/v1/get_generation_progress"
API_KEY_VARIABLE = "DIFFIO_API_KEY"

EXIT_COMPLETE = 0
EXIT_FAILED = 1  # the generation failed
EXIT_REFUSED = 2  # the endpoint refused the request (401, 403, 404, ...)
EXIT_UNREACHABLE = 3  # no answer within the retry budget

# Answers worth waiting out: the service (or its front end) is busy or restarting.
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_STATUS_HINTS = {
    401: "check DIFFIO_API_KEY or --api-key",
    403: "the key is not active, lacks read permission, or does not own this generation",
    404: "check the generation id (and --project-id)",
}


@dataclass
class Backoff:
    """Exponential delays with jitter, up to ``budget`` seconds of consecutive failures."""

    budget: float
    initial: float = 0.5
    cap: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _first_failure: float | None = field(default=None, init=False)
    _attempt: int = field(default=0, init=False)

    def reset(self) -> None:
        self._first_failure, self._attempt = None, 0

    def next_delay(self, hint: float | None = None) -> float | None:
        """Seconds to wait before the next try, or ``None`` once the budget is spent."""
        now = self.clock()
        if self._first_failure is None:
            self._first_failure = now
        spent = now - self._first_failure
        if spent >= self.budget:
            return None
        delay = min(self.cap, self.initial * 2.0**self._attempt) * random.uniform(0.5, 1.0)
        if hint is not None:
            delay = max(delay, min(hint, self.cap))
        self._attempt += 1
        return min(delay, self.budget - spent)


@dataclass
class Watcher:
    """Polls one generation until it completes or fails."""

    url: str
    api_key: str
    generation_id: str
    project_id: str | None = None
    interval: float = 1.0
    retry_for: float = 30.0
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10.0))
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise CliError(f"--url must be an http:// or https:// URL, got {self.url!r}", 2)

    def run(self, view: View, err: TextIO) -> int:
        last: dict[str, Any] | None = None
        while True:
            body = self.poll(view)
            if body != last:
                view.update(body)
                last = body
            status = body.get("status")
            if status == "complete":
                return EXIT_COMPLETE
            if status == "failed":
                view.close()
                err.write(f"Generation {self.generation_id} failed: {body.get('error')}\n")
                if body.get("errorDetails"):
                    err.write(f"Details: {body['errorDetails']}\n")
                return EXIT_FAILED
            self.sleep(self.interval)

    def poll(self, view: View) -> dict[str, Any]:
        """One answered poll: the 200 body; waits out 503s and outages, else ``CliError``."""
        request: dict[str, str] = {"generationId": self.generation_id}
        if self.project_id:
            request["apiProjectId"] = self.project_id
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "User-Agent": "diffio-progress-watch",
        }
        backoff = Backoff(self.retry_for)
        while True:
            try:
                response = self.client.post(self.url, json=request, headers=headers)
            except httpx.UnsupportedProtocol:
                raise CliError(f"--url is not a usable URL: {self.url}", EXIT_REFUSED) from None
            except httpx.TransportError as error:
                reason = _describe(error)
                hint = None
            else:
                if response.status_code == 200:
                    return _json_object(response, self.url)
                if response.status_code not in _RETRY_STATUSES:
                    raise CliError(_refusal(response, self.url), EXIT_REFUSED)
                reason = f"{response.status_code} {_message(response) or response.reason_phrase}"
                hint = _retry_after(response)
            delay = backoff.next_delay(hint)
            if delay is None:
                raise CliError(
                    f"Cannot reach {self.url}: {reason} (gave up after {self.retry_for:g} s)",
                    EXIT_UNREACHABLE,
                )
            view.notice(f"{reason}; retrying in {delay:.1f} s")
            self.sleep(delay)


def watch(
    watcher: Watcher,
    *,
    json_lines: bool,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    view: View = JsonView(out, err) if json_lines else RichView(out, watcher.generation_id)
    try:
        return watcher.run(view, err)
    finally:
        view.close()
        watcher.client.close()


def _describe(error: httpx.TransportError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "no answer (timed out)"
    if isinstance(error, httpx.ConnectError):
        return "connection refused or host unknown"
    return f"connection failed ({type(error).__name__})"


def _message(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        code = body.get("code")
        return f"{body['error']} ({code})" if isinstance(code, str) else str(body["error"])
    return None


def _refusal(response: httpx.Response, url: str) -> str:
    status = response.status_code
    message = _message(response)
    if message is None:
        # Not this API's JSON: most likely the URL points somewhere else.
        return f"{status} {response.reason_phrase} from {url}: is the URL right?"
    hint = _STATUS_HINTS.get(status)
    return f"{status} {response.reason_phrase}: {message}" + (f"; {hint}" if hint else "")


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def _json_object(response: httpx.Response, url: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "status" not in body:
        raise CliError(f"{url} answered 200 but not with a progress body: is the URL right?", 2)
    return body
