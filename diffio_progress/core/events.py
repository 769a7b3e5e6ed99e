"""Status-change events, pure: types and ranks, which writes matter, forward-only, the payload.

events-contract.md §1-2 on plain data. No I/O, no clock, no randomness: the
caller passes in ``now`` and the new event's id. The overall status comes from
``core.progress.compose``, so the rules of a poll and of an event are one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import paths
from .ids import is_document_id
from .stages import (
    ALL_STAGES,
    COMPLETE,
    FAILED,
    PENDING,
    PROCESSING,
    RUNNING,
    normalize_status,
    text_field,
)

QUEUED_EVENT = "generation.queued"
PROCESSING_EVENT = "generation.processing"
COMPLETED_EVENT = "generation.completed"
FAILED_EVENT = "generation.failed"
EVENT_ID_PREFIX = "evt_"
# The outbox: apiProjects/{p}/generations/{g}/events/{eventType}. Neither trigger
# pattern matches it, so recording an event never triggers the function again.
EVENTS = "events"


@dataclass(frozen=True)
class EventKind:
    """What a progress status becomes as an event: its type, its rank, the payload's status."""

    event_type: str
    rank: int
    status: str


_KINDS = {
    PENDING: EventKind(QUEUED_EVENT, 0, "queued"),
    PROCESSING: EventKind(PROCESSING_EVENT, 1, "processing"),
    COMPLETE: EventKind(COMPLETED_EVENT, 2, "complete"),
    FAILED: EventKind(FAILED_EVENT, 2, "error"),
}
EVENT_TYPES = tuple(kind.event_type for kind in _KINDS.values())
RANKS = {kind.event_type: kind.rank for kind in _KINDS.values()}


def kind_of(status: str) -> EventKind:
    """The event a composed overall status (rule 7) stands for."""
    return _KINDS[status]


def is_new(kind: EventKind, recorded: Iterable[str]) -> bool:
    """Forward only: record ``kind`` only if it outranks every event already recorded.

    So at most one event of each type, nothing after completed or failed, and a
    skipped state (queued straight to completed) is never invented afterwards.
    """
    return all(kind.rank > RANKS.get(event_type, 2) for event_type in recorded)


def as_event_body(
    body: Mapping[str, Any], jobs: Iterable[Mapping[str, Any] | None], created: bool
) -> Mapping[str, Any]:
    """The composed ``body`` with its status as events see it (events-contract.md §2).

    Creating a generation is queuing it: the creation's event is queued unless
    the generation already ended. Otherwise a generation is processing only
    once one of its own job documents (``jobs``) is running or complete; rule 6
    alone (the project's MP3, shared by all its generations) leaves it queued.
    """
    status = body["status"]
    if status != PROCESSING:
        return body
    if created or not any(job_status(job) in (RUNNING, COMPLETE) for job in jobs):
        return {**body, "status": PENDING}
    return body


def in_rank_order(event_types: Iterable[str]) -> list[str]:
    """Event types in the order a client must receive them."""
    return sorted(event_types, key=lambda t: (RANKS.get(t, 2), t))


@dataclass(frozen=True)
class Target:
    """The document a Firestore event is about: a generation, or one of its job documents."""

    api_project_id: str
    generation_id: str
    stage: str | None = None  # None: the generation document itself

    @property
    def path(self) -> str:
        segments = paths.generation(self.api_project_id, self.generation_id)
        if self.stage is not None:
            segments = (*segments, paths.JOBS, self.stage)
        return "/".join(segments)


def parse_target(document: str) -> Target | None:
    """``apiProjects/{p}/generations/{g}`` or ``.../jobs/{stage}``; anything else is ``None``."""
    segments = document.split("/")
    if not all(is_document_id(s) for s in segments):
        return None
    if len(segments) in (4, 6) and segments[0] == paths.API_PROJECTS:
        if segments[2] == paths.GENERATIONS and len(segments) == 4:
            return Target(segments[1], segments[3])
        if segments[2] == paths.GENERATIONS and segments[4] == paths.JOBS:
            return Target(segments[1], segments[3], segments[5])
    return None


def job_status(job: Mapping[str, Any] | None) -> str:
    """A job document's normalized status; a missing document is pending (rule 5)."""
    return PENDING if job is None else normalize_status(job.get("status"))


def may_change_status(
    target: Target, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> bool:
    """Whether this write can change the overall status, judged from the event alone.

    Only the generation's creation (the queued event) and a job write whose
    normalized ``status`` differs before and after can. A progress update, a
    message, an unknown stage's document or any other generation write cannot,
    and costs no Firestore read.
    """
    if target.stage is None:
        return before is None and after is not None
    if target.stage not in ALL_STAGES:
        return False
    return job_status(before) != job_status(after)


def outbox_path(api_project_id: str, generation_id: str, event_type: str) -> paths.DocPath:
    return (*paths.generation(api_project_id, generation_id), EVENTS, event_type)


def rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and ``Z``, as clients parse it everywhere."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def build_payload(
    body: Mapping[str, Any],
    generation: Mapping[str, Any],
    event_id: str,
    created_at: datetime,
) -> dict[str, Any]:
    """The JSON object a client receives (contract §1), from a composed progress body.

    ``body`` is what a poll would answer at this moment (``compose``), so the
    status, ``hasVideo``, the failure's ``error``/``errorDetails`` and
    ``transcription`` are exactly a poll's.
    """
    kind = kind_of(body["status"])
    failed = kind.event_type == FAILED_EVENT
    payload: dict[str, Any] = {
        "eventType": kind.event_type,
        "eventId": event_id,
        "createdAt": rfc3339(created_at),
        "apiKeyId": text_field(generation, "apiKeyId", "generation"),
        "apiProjectId": body["apiProjectId"],
        "generationId": body["generationId"],
        "status": kind.status,
        "hasVideo": body["hasVideo"],
        "modelKey": text_field(generation, "modelKey", "generation"),
        "error": body.get("error") if failed else None,
        "errorDetails": body.get("errorDetails") if failed else None,
    }
    if "transcription" in body:
        payload["transcription"] = body["transcription"]
    return payload
