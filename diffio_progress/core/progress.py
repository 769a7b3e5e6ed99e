"""The pure core: compose a progress response from plain documents (rules 3-9).

No I/O, no clock, no environment: data in, data out. The progress endpoint and
the status-change events both compose through ``compose``, so the rules exist once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .optional_fields import optional_fields
from .stages import (
    FAILED,
    LiveExecution,
    Stage,
    apply_live,
    build_stages,
    has_video,
    live_lookups,
    overall_status,
)

LiveLookup = Callable[[Mapping[str, str]], Mapping[str, LiveExecution]]


def compose(
    generation_id: str,
    api_project_id: str,
    project: Mapping[str, Any],
    jobs: Mapping[str, Mapping[str, Any] | None],
    lookup: LiveLookup | None = None,
    generation: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The full 200 response body: rules 3-8, the live Cloud Run mapping, then rule 9.

    ``lookup`` receives stage name -> execution name for the stages worth
    checking and returns stage name -> live state for those it could learn;
    the I/O lives in the caller's function, not here. ``generation`` is the
    generation document, the source of rule 9's transcription and queue.
    """
    stages = build_stages(project, jobs)
    wanted = live_lookups(stages) if lookup is not None else {}
    if lookup is not None and wanted:
        live = lookup(wanted)
        stages = {name: apply_live(stage, live.get(name)) for name, stage in stages.items()}
    return response_body(generation_id, api_project_id, has_video(project), stages, generation)


def response_body(
    generation_id: str,
    api_project_id: str,
    video: bool,
    stages: Mapping[str, Stage],
    generation: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    status = overall_status(stage.status for stage in stages.values())
    body: dict[str, Any] = {
        "generationId": generation_id,
        "apiProjectId": api_project_id,
        "status": status,
        "hasVideo": video,
    }
    body.update((name, stage.to_dict()) for name, stage in stages.items())
    if status == FAILED:
        # Rule 8: the first failed stage, in stage order, speaks for the generation.
        name, failed = next((n, s) for n, s in stages.items() if s.status == FAILED)
        body["error"] = failed.error or f"{name} failed"
        body["errorDetails"] = failed.error_details
    body.update(optional_fields(generation or {}, status, stages))
    return body
