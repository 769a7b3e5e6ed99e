"""Fixtures of the reaper's tests: the Cloud Run stand-in, stale stages seeded, reapers built."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.functions.cloud_run import CloudRunLookup, executions_client
from diffio_progress.functions.reaper.store import ReaperStore
from diffio_progress.functions.reaper.sweep import Reaper
from diffio_progress.tools import cloud_run_standin as replies
from diffio_progress.tools.cloud_run_standin import CloudRunStandIn, Reply
from tests import spec_example
from tests.conftest import TEST_PROJECT
from tests.log_records import Records, kept

OOM = "Task worker-0 exited with code 137: out of memory"
# A stage as a worker left it: the API reference's running inference.
RUNNING_JOB: dict[str, Any] = dict(spec_example.RESPONSE["inference"])


@pytest.fixture
def standin() -> Iterator[CloudRunStandIn]:
    with CloudRunStandIn() as server:
        yield server


@pytest.fixture
def reaper_logs() -> Iterator[Records]:
    """Records of the reaper and the lookup (the package logger does not propagate)."""
    names = [
        f"diffio_progress.functions.{m}" for m in ("reaper.sweep", "reaper.store", "cloud_run")
    ]
    with kept(Records(logging.INFO), *names, level=logging.INFO) as handler:
        yield handler


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


@pytest.fixture
def stages(db: firestore.Client, standin: CloudRunStandIn) -> Stages:
    return Stages(db, standin)


@pytest.fixture
def make_reaper(standin: CloudRunStandIn) -> Callable[..., Reaper]:
    """A reaper as deployed, with its own Firestore client and Cloud Run lookup."""

    def make(
        *, batch: int = 500, deadline: float = 2.0, workers: int = 8, min_age: float = 60
    ) -> Reaper:
        lookup = CloudRunLookup(
            deadline=deadline,
            cache_ttl=0,  # each call asks afresh, as calls a minute apart do
            client_factory=lambda: executions_client(standin.host_port),
            workers=workers,
            warn=False,
        )
        store = ReaperStore(5.0, project=TEST_PROJECT)
        return Reaper(store, lookup.in_order, min_age_seconds=min_age, batch=batch)

    return make
