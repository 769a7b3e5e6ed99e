"""Where each contract document lives, as path segments (never joined from raw input)."""

from __future__ import annotations

from .ids import is_document_id

DocPath = tuple[str, ...]

API_KEYS = "apiKeys"
API_PROJECTS = "apiProjects"
GENERATIONS = "generations"
JOBS = "jobs"


def _checked(*ids: str) -> None:
    # Defence in depth: request parsing already refused such ids. Only the
    # variable segments are checked: this runs a dozen times on every poll.
    for segment in ids:
        if not is_document_id(segment):
            raise ValueError("not a document id")


def api_key(key_hash: str) -> DocPath:
    _checked(key_hash)
    return (API_KEYS, key_hash)


def project(api_project_id: str) -> DocPath:
    _checked(api_project_id)
    return (API_PROJECTS, api_project_id)


def generation(api_project_id: str, generation_id: str) -> DocPath:
    _checked(api_project_id, generation_id)
    return (API_PROJECTS, api_project_id, GENERATIONS, generation_id)


def job(api_project_id: str, generation_id: str, stage: str) -> DocPath:
    _checked(api_project_id, generation_id, stage)
    return (API_PROJECTS, api_project_id, GENERATIONS, generation_id, JOBS, stage)


def project_of_generation(path: DocPath) -> str | None:
    """The project id of ``apiProjects/{p}/generations/{g}``, else ``None``.

    The collection-group query matches every collection named
    ``generations``; only ones under ``apiProjects`` belong to this contract.
    """
    if len(path) == 4 and path[0] == API_PROJECTS and path[2] == GENERATIONS:
        return path[1]
    return None


def stage_of_job(path: DocPath) -> tuple[str, str, str] | None:
    """``(apiProjectId, generationId, stage)`` of ``apiProjects/{p}/generations/{g}/jobs/{stage}``.

    ``None`` for any other path: a collection-group query on ``jobs`` matches
    every collection of that name, and only these belong to the contract.
    """
    if len(path) == 6 and (path[0], path[2], path[4]) == (API_PROJECTS, GENERATIONS, JOBS):
        return path[1], path[3], path[5]
    return None
