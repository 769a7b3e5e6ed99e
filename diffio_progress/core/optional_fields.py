"""Rule 9: the optional transcription, stage, stageProgress and queue fields, each when true.

The official SDK (0.3.10 and later) reads them. Each comes from a document the
poll has already read (the generation, and the composed stages); a malformed
stored value is left out with one warning, never half-formed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .stages import COMPLETE, FAILED, INFERENCE, PENDING, PROCESSING, Stage

log = logging.getLogger(__name__)

TRANSCRIPTION_STATUSES = ("pending", "available", "unavailable")


def transcription_status(value: object) -> str | None:
    """The status of a stored ``transcription`` map, when it is one of the three; else ``None``.

    The writers read the stored value through this too, so reader and writer
    agree on what a valid transcription is.
    """
    status = value.get("status") if isinstance(value, Mapping) else None
    return status if isinstance(status, str) and status in TRANSCRIPTION_STATUSES else None


def queue_position(value: object) -> int | None:
    """A stored ``queue.position`` when it is an integer >= 0 (a bool is not); else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def transcription_field(generation: Mapping[str, Any]) -> dict[str, str] | None:
    """``{"status": ...}`` from the generation's ``transcription``, when it is one of the three."""
    value = generation.get("transcription")
    if value is None:
        return None  # an older generation: nothing to say
    status = transcription_status(value)
    if status is None:
        log.warning("generation field transcription is malformed; leaving it out")
        return None
    return {"status": status}


def current_stage(status: str, stages: Mapping[str, Stage]) -> str | None:
    """While pending or processing, the first stage not complete; when failed, the first failed."""
    if status in (PENDING, PROCESSING):
        return next((name for name, stage in stages.items() if stage.status != COMPLETE), None)
    if status == FAILED:
        return next((name for name, stage in stages.items() if stage.status == FAILED), None)
    return None


def queue_field(
    generation: Mapping[str, Any], status: str, stages: Mapping[str, Stage]
) -> dict[str, Any] | None:
    """The dispatcher's ``queue``, only while inference waits and nothing has failed.

    A stale ``queue`` (inference already running or done) is not reported. A
    position that is not a non-negative integer drops the field; a message that
    is not a string becomes null and the position stays.
    """
    value = generation.get("queue")
    if value is None:
        return None
    inference = stages.get(INFERENCE)
    if status == FAILED or inference is None or inference.status != PENDING:
        return None
    position = queue_position(value.get("position")) if isinstance(value, Mapping) else None
    if position is None:
        log.warning("generation field queue is malformed; leaving it out")
        return None
    message = value.get("message")
    if message is not None and not isinstance(message, str):
        log.warning("generation field queue.message is not a string; reporting null")
        message = None
    return {"position": position, "message": message}


def optional_fields(
    generation: Mapping[str, Any], status: str, stages: Mapping[str, Stage]
) -> dict[str, Any]:
    """The rule 9 fields that have something true to say, ready to merge into the body."""
    fields: dict[str, Any] = {}
    transcription = transcription_field(generation)
    if transcription is not None:
        fields["transcription"] = transcription
    stage = current_stage(status, stages)
    if stage is not None:
        names = list(stages)
        fields["stage"] = stage
        fields["stageProgress"] = {
            "stage": stage,
            "index": names.index(stage) + 1,
            "count": len(names),
            "progress": stages[stage].progress,
        }
    queue = queue_field(generation, status, stages)
    if queue is not None:
        fields["queue"] = queue
    return fields
