"""What `watch` shows: live bars with the stage, queue and transcription lines, or JSON lines."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Protocol, TextIO

STAGE_LABELS = {
    "preProcessing": "Preprocessing",
    "inference": "Inference",
    "restoredVideo": "Restored video",
}
STAGE_ORDER = tuple(STAGE_LABELS)
_STATUS_COLOURS = {"complete": "green", "failed": "red", "processing": "cyan"}


class View(Protocol):
    def update(self, body: dict[str, Any]) -> None: ...
    def notice(self, text: str | None) -> None: ...
    def close(self) -> None: ...


# -- the pure part: lines from a response body --------------------------------------
# Bodies come from whatever --url answers, so every field is checked, never trusted.


def stage_line(body: Mapping[str, Any]) -> str | None:
    """``Stage 2 of 3: Inference`` from ``stageProgress``, when the endpoint reports one."""
    current = body.get("stageProgress")
    if not isinstance(current, Mapping):
        return None
    index, count, name = current.get("index"), current.get("count"), current.get("stage")
    if not (_is_int(index) and _is_int(count)):
        return None
    label = STAGE_LABELS.get(name, name) if isinstance(name, str) else None
    return f"Stage {index} of {count}" + (f": {label}" if label else "")


def queue_line(body: Mapping[str, Any]) -> str | None:
    """``Queued: position 3 (Waiting for a GPU)`` while the endpoint reports a queue."""
    queue = body.get("queue")
    if not isinstance(queue, Mapping) or not _is_int(queue.get("position")):
        return None
    position, message = queue["position"], queue.get("message")
    place = "next in line" if position == 0 else f"position {position}"
    return f"Queued: {place}" + (f" ({message})" if isinstance(message, str) and message else "")


def transcription_line(body: Mapping[str, Any]) -> str | None:
    """``Transcription: available``, when the endpoint reports the transcription."""
    transcription = body.get("transcription")
    status = transcription.get("status") if isinstance(transcription, Mapping) else None
    return f"Transcription: {status}" if isinstance(status, str) else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- the views --------------------------------------------------------------------------


class JsonView:
    """One compact JSON line per change on stdout (the whole body); notices go to stderr."""

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
    """The overall status and current stage, the queue and transcription, a bar per stage."""

    def __init__(self, out: TextIO, generation_id: str) -> None:
        # rich is a development tool: the deployed function never imports this module.
        from rich.console import Console
        from rich.live import Live
        from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
        from rich.text import Text

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
        self._headline = Text(f"Generation {generation_id}: waiting for the first answer")
        self._details: list[Text] = []
        self._notice: str | None = None
        self._live = Live(self._render(), console=self._console, refresh_per_second=8)
        self._live.start()

    def _render(self) -> Any:
        from rich.console import Group, RenderableType
        from rich.text import Text

        lines: list[RenderableType] = [self._headline, *self._details, self._progress]
        if self._notice:
            lines.append(Text(self._notice, style="yellow"))
        return Group(*lines)

    def update(self, body: dict[str, Any]) -> None:
        from rich.text import Text

        status = str(body.get("status"))
        media = "video" if body.get("hasVideo") else "audio"
        # Text pieces, not markup: ids and messages from the server are shown as they are.
        self._headline = Text.assemble(
            "Generation ",
            (str(body.get("generationId", self._generation_id)), "bold"),
            f" ({body.get('apiProjectId')}, {media}): ",
            (status, f"bold {_STATUS_COLOURS.get(status, 'white')}"),
        )
        # One short line each, so that an 80-column terminal does not wrap them.
        lines = [(stage_line(body), "bold"), (queue_line(body), "magenta")]
        lines.append((transcription_line(body), "dim"))
        self._details = [Text(line, style=style) for line, style in lines if line]
        for name in STAGE_ORDER:
            self._update_stage(name, body.get(name))
        self._notice = None
        self._live.update(self._render(), refresh=True)

    def _update_stage(self, name: str, stage: object) -> None:
        if not isinstance(stage, dict):
            return
        status = str(stage.get("status") or "")
        message = str(stage.get("error") or stage.get("statusMessage") or "")
        percent = stage.get("progress")
        completed = 0
        if isinstance(percent, (int, float)) and math.isfinite(percent):
            completed = round(percent)
        task = self._tasks.get(name)
        if task is None:
            self._tasks[name] = self._progress.add_task(
                STAGE_LABELS[name], total=100, completed=completed, status=status, message=message
            )
        else:
            self._progress.update(task, completed=completed, status=status, message=message)

    def notice(self, text: str | None) -> None:
        self._notice = text
        self._live.update(self._render(), refresh=True)

    def close(self) -> None:
        self._live.stop()
