"""The reaper's pure rules: which job documents it checks, its answer, and where it goes on next.

No I/O, no clock: the reaper in ``functions/reaper/sweep.py`` feeds these plain data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import paths
from .stages import ALL_STAGES, PENDING, RUNNING, is_execution_name, statuses_read_as

# What the query matches: every stored spelling that reads as pending or running, so a
# worker that wrote "processing" and died is found too (Firestore's "in" takes up to 30).
CANDIDATE_STATUSES = statuses_read_as(PENDING, RUNNING)
_MAX_SHOWN_CHARS = 200


@dataclass(frozen=True)
class Position:
    """A job document's place in the query's order: ``updatedAt``, then its path."""

    updated_at: datetime
    path: paths.DocPath


@dataclass(frozen=True)
class Cursor:
    """Where the next call goes on: after ``after`` (``None``: from the start), in lap ``lap``.

    A lap ends when a call reaches the end of the candidates; the next starts over.
    """

    lap: int = 0
    after: Position | None = None


@dataclass(frozen=True)
class AskCloudRun:
    """Ask Cloud Run about this execution."""

    execution_name: str


@dataclass(frozen=True)
class Malformed:
    """The stage names an execution that cannot be looked up: a lookup error."""

    reason: str


@dataclass(frozen=True)
class Skip:
    """Never touched. ``reason`` is worth a warning; ``None`` is the normal case."""

    reason: str | None = None


Examined = AskCloudRun | Malformed | Skip


@dataclass(frozen=True)
class Summary:
    """The answer of one call (events contract §5)."""

    checked: int = 0
    failed: int = 0
    lookup_errors: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"checked": self.checked, "failed": self.failed, "lookupErrors": self.lookup_errors}


def examine(path: paths.DocPath, job: Mapping[str, Any]) -> Examined:
    """What the reaper does with a job document the query found."""
    where = paths.stage_of_job(path)
    if where is None or where[2] not in ALL_STAGES:
        return Skip("not a stage document of the data contract")
    name = job.get("executionName")
    if name is None or name == "":
        return Skip()  # nothing to ask about: the dispatcher or worker has not named one
    if not is_execution_name(name):
        shown = repr(name)
        if len(shown) > _MAX_SHOWN_CHARS:
            shown = shown[:_MAX_SHOWN_CHARS] + "..."
        return Malformed(f"executionName {shown} is not an execution resource name")
    return AskCloudRun(name)


def reached(examined: Sequence[Examined], started: int) -> int:
    """How many of the page's documents a call got through, having started ``started`` lookups.

    Everything before the first lookup it could not start; a lookup that was
    started counts as got through whatever its outcome (an error, a hang), so
    one bad execution can never hold the cursor back.
    """
    lookups = 0
    for index, item in enumerate(examined):
        if isinstance(item, AskCloudRun):
            if lookups == started:
                return index
            lookups += 1
    return len(examined)


def next_cursor(cursor: Cursor, page: Sequence[Position], done: int, batch: int) -> Cursor:
    """Where the call after this one goes on, having got through ``done`` of ``page``.

    A page shorter than ``batch`` that was got through to its end is the end of
    the candidates: the next call starts a new lap from the oldest. Otherwise it
    goes on after the last document got through, so every candidate is reached
    within a lap however many are in front of it.
    """
    if done == len(page) and len(page) < batch:
        return Cursor(cursor.lap + 1, None)
    if done == 0:
        return cursor
    return Cursor(cursor.lap, page[done - 1])
