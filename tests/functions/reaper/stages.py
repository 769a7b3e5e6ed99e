"""Stale stages as the reaper finds them: job documents seeded, each with its own execution."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.tools import cloud_run_standin as replies
from diffio_progress.tools.cloud_run_standin import CloudRunStandIn, Reply
from tests import spec_example

OOM = "Task worker-0 exited with code 137: out of memory"
# A stage as a worker left it: the API reference's running inference.
RUNNING_JOB: dict[str, Any] = dict(spec_example.RESPONSE["inference"])


@dataclass
class Stages:
    """Seeds job documents as the reaper finds them, each with its own execution."""

    db: firestore.Client
    standin: CloudRunStandIn
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def add(
        self,
        reply: Callable[[str], Reply] | None = replies.running,
        *,
        age: timedelta = timedelta(minutes=5),
        stage: str = "inference",
        label: str = "gen",
        **fields: Any,
    ) -> paths.DocPath:
        """A stage last written ``age`` ago, whose execution the stand-in answers with ``reply``.

        ``reply=None`` leaves the execution unknown to the stand-in (404).
        ``executionName`` may be overridden (or set to None) through ``fields``.
        """
        generation = f"{label}-{uuid.uuid4().hex[:10]}"
        name = replies.execution_name(generation)
        if reply is not None:
            self.standin.script(name, reply(name))
        path = paths.job("proj-1", generation, stage)
        document = {**RUNNING_JOB, "executionName": name, "updatedAt": self.now - age, **fields}
        self.db.document(*path).set(document)
        return path

    def read(self, path: paths.DocPath) -> dict[str, Any]:
        snapshot = self.db.document(*path).get()
        assert snapshot.exists
        return snapshot.to_dict() or {}

    def execution(self, path: paths.DocPath) -> str:
        return str(self.read(path)["executionName"])
