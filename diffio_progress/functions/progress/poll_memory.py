"""What a poll may remember (the contract's "What never changes") and which documents it must read.

A steady poll then reads only what can still change: the key (unless cached),
the generation (so a deleted one is a 404 at once) and the job documents that
are not finished yet. The project is read again at least every
``PROJECT_RECHECK_SECONDS``, so a deleted project answers 404 within that bound.
A generation deleted and created again at the same path has a new creation
time: what was remembered for it, and its project's facts, are then forgotten.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

from diffio_progress.core import paths
from diffio_progress.core.stages import (
    COMPLETE,
    FAILED,
    PRE_PROCESSING,
    has_video,
    known_status,
    stage_names,
)

Document = dict[str, Any]

# A deleted project is noticed within this many seconds (a deleted generation at once).
PROJECT_RECHECK_SECONDS = 60.0
_PROJECTS = 100_000
# Finished job documents of generations being polled (each a few hundred bytes).
_FINISHED_JOBS = 50_000


@dataclass(frozen=True)
class ProjectFacts:
    """The project fields a poll uses, none of which can change back (contract §2)."""

    document: Mapping[str, Any]  # userId, hasVideo, audioOriginalMp3Ready as stored
    read_at: float

    @property
    def mp3_ready(self) -> bool:
        return self.document.get("audioOriginalMp3Ready") is True


@dataclass(frozen=True)
class ReadPlan:
    """The documents one poll reads, and what it takes from memory instead."""

    project_path: paths.DocPath | None  # None: use ``project``
    project: Mapping[str, Any] | None
    job_paths: dict[str, paths.DocPath]  # stage -> document to read
    finished_jobs: dict[str, Document]  # stage -> remembered finished document

    def jobs(self, docs: Mapping[paths.DocPath, Document | None]) -> dict[str, Document | None]:
        """Every planned stage's document: the ones just read, then the remembered ones."""
        read = {stage: docs[path] for stage, path in self.job_paths.items()}
        return {**read, **self.finished_jobs}


class PollMemory:
    """Per-process memory of facts that never change; safe across threads and bounded."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._projects: LRUCache[str, ProjectFacts] = LRUCache(_PROJECTS)
        self._finished: LRUCache[paths.DocPath, Document] = LRUCache(_FINISHED_JOBS)
        # When each polled generation was created, as Firestore says.
        self._created: LRUCache[tuple[str, str], object] = LRUCache(_FINISHED_JOBS)
        self._lock = threading.Lock()

    def plan(self, project_id: str, generation_id: str) -> ReadPlan:
        with self._lock:
            facts = self._projects.get(project_id)
            # Until the media type is known, read restoredVideo's document too.
            video = facts is None or has_video(facts.document)
            job_paths = {s: paths.job(project_id, generation_id, s) for s in stage_names(video)}
            finished = {s: self._finished[p] for s, p in job_paths.items() if p in self._finished}
        for stage in finished:
            del job_paths[stage]
        read_project = (
            facts is None
            or self._monotonic() - facts.read_at >= PROJECT_RECHECK_SECONDS
            # Rule 6: the MP3 flag can still complete preprocessing, unless its job did.
            or (not facts.mp3_ready and not _status_is(finished.get(PRE_PROCESSING), COMPLETE))
        )
        return ReadPlan(
            project_path=paths.project(project_id) if read_project else None,
            project=None if facts is None else facts.document,
            job_paths=job_paths,
            finished_jobs=finished,
        )

    def learn(
        self,
        project_id: str,
        project: Mapping[str, Any] | None,
        jobs: Mapping[paths.DocPath, Document | None],
    ) -> None:
        """Remember a project just read, and every job document that has finished."""
        with self._lock:
            if project is not None:
                kept = ("userId", "hasVideo", "audioOriginalMp3Ready")
                document = {k: project[k] for k in kept if k in project}
                self._projects[project_id] = ProjectFacts(document, self._monotonic())
            for path, job in jobs.items():
                if job is not None and known_status(job.get("status")) in (COMPLETE, FAILED):
                    self._finished[path] = job

    def replaced(self, project_id: str, generation_id: str, created: object) -> bool:
        """Whether the generation was created anew since it was last seen; then forget it.

        Its remembered stages belonged to the old document, and a project that
        was deleted with it may have been recreated too, so its facts go as well.
        """
        if created is None:
            return False
        with self._lock:
            known = self._created.get((project_id, generation_id))
            self._created[(project_id, generation_id)] = created
        if known is None or known == created:
            return False
        self.forget_generation(project_id, generation_id)
        self.forget_project(project_id)
        return True

    def forget_project(self, project_id: str) -> None:
        with self._lock:
            self._projects.pop(project_id, None)

    def forget_generation(self, project_id: str, generation_id: str) -> None:
        with self._lock:
            for stage in stage_names(True):
                self._finished.pop(paths.job(project_id, generation_id, stage), None)


def _status_is(job: Mapping[str, Any] | None, status: str) -> bool:
    return job is not None and known_status(job.get("status")) == status
