"""Poll the progress endpoint over HTTP like any client, and show it live (or as JSON lines)."""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

import httpx

from .firestore_connection import CliError

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
STAGE_LABELS = {
    "preProcessing": "Preprocessing",
    "inference": "Inference",
    "restoredVideo": "Restored video",
}
STAGE_ORDER = tuple(STAGE_LABELS)


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


class View(Protocol):
    def update(self, body: dict[str, Any]) -> None: ...
    def notice(self, text: str | None) -> None: ...
    def close(self) -> None: ...


class JsonView:
    """One compact JSON line per change on stdout; notices go to stderr."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out, self.err = out, err

    def update(self, body: dict[str, Any]) -> None:
        self.out.write(json.dumps(body, separators=(",", ":"), sort_keys=True) + "\n")
        self.out.flush()

    def notice(self, text: str | None) -> None:
        if text:
            self.err.write(text + "\n")
            self.err.flush()

    def close(self) -> None:
        pass


class RichView:
    """One live progress bar per stage, with its status and message, under the overall status."""

    def __init__(self, out: TextIO, generation_id: str) -> None:
        # rich is a development tool: the deployed function never imports this module.
        from rich.console import Console
        from rich.live import Live
        from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

        self._console = Console(file=out)
        self._progress = Progress(
            TextColumn("{task.description:<15}"),
            BarColumn(bar_width=30),
            TaskProgressColumn(),
            TextColumn("{task.fields[status]:<8}"),
            TextColumn("{task.fields[message]}", style="dim"),
            console=self._console,
            auto_refresh=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._generation_id = generation_id
        self._headline = f"Generation {generation_id}: waiting for the first answer"
        self._notice: str | None = None
        self._live = Live(self._render(), console=self._console, refresh_per_second=8)
        self._live.start()

    def _render(self) -> Any:
        from rich.console import Group, RenderableType
        from rich.text import Text

        lines: list[RenderableType] = [Text.from_markup(self._headline), self._progress]
        if self._notice:
            lines.append(Text(self._notice, style="yellow"))
        return Group(*lines)

    def update(self, body: dict[str, Any]) -> None:
        status = str(body.get("status"))
        colour = {"complete": "green", "failed": "red", "processing": "cyan"}.get(status, "white")
        media = "video" if body.get("hasVideo") else "audio"
        self._headline = (
            f"Generation [bold]{body.get('generationId', self._generation_id)}[/] "
            f"({body.get('apiProjectId')}, {media}): [bold {colour}]{status}[/]"
        )
        for name in STAGE_ORDER:
            stage = body.get(name)
            if not isinstance(stage, dict):
                continue
            status = str(stage.get("status") or "")
            message = str(stage.get("error") or stage.get("statusMessage") or "")
            percent = stage.get("progress")
            completed = round(percent) if isinstance(percent, (int, float)) else 0
            task = self._tasks.get(name)
            if task is None:
                self._tasks[name] = self._progress.add_task(
                    STAGE_LABELS[name],
                    total=100,
                    completed=completed,
                    status=status,
                    message=message,
                )
            else:
                self._progress.update(task, completed=completed, status=status, message=message)
        self._notice = None
        self._live.update(self._render(), refresh=True)

    def notice(self, text: str | None) -> None:
        self._notice = text
        self._live.update(self._render(), refresh=True)

    def close(self) -> None:
        self._live.stop()


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
