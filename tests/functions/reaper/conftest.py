"""Fixtures of the reaper's tests: the Cloud Run stand-in, stale stages seeded, reapers built."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from google.cloud import firestore

from diffio_progress.functions.cloud_run import CloudRunExecutions, executions_client
from diffio_progress.functions.firestore import FirestoreConnection
from diffio_progress.functions.reaper.lookups import ReaperLookup
from diffio_progress.functions.reaper.store import ReaperStore
from diffio_progress.functions.reaper.sweep import Reaper
from diffio_progress.tools.cloud_run_standin import CloudRunStandIn
from tests.functions.reaper.stages import Stages
from tests.log_records import Records, kept
from tests.project import TEST_PROJECT


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


@pytest.fixture
def stages(db: firestore.Client, standin: CloudRunStandIn) -> Stages:
    return Stages(db, standin)


@pytest.fixture
def make_reaper(standin: CloudRunStandIn) -> Callable[..., Reaper]:
    """A reaper as deployed, with its own Firestore client and Cloud Run lookup."""

    def make(
        *, batch: int = 500, deadline: float = 2.0, workers: int = 8, min_age: float = 60
    ) -> Reaper:
        executions = CloudRunExecutions(
            deadline=deadline,
            cache_ttl=0,  # each call asks afresh, as calls a minute apart do
            client_factory=lambda: executions_client(standin.host_port),
            workers=workers,
        )
        store = ReaperStore(FirestoreConnection(5.0, project=TEST_PROJECT))
        return Reaper(store, ReaperLookup(executions), min_age_seconds=min_age, batch=batch)

    return make
