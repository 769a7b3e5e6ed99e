"""Fuzzing from openapi.yaml: the served function never answers 5xx and always conforms."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import SearchStrategy, sampled_from
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.project import ROOT
from tests.seed import Seeder

PATH = "/v1/get_generation_progress"
SCHEMA = schemathesis.openapi.from_path(str(ROOT / "openapi.yaml"))
POST = SCHEMA[PATH]["POST"]
AUTH_HEADERS = {"authorization", "x-api-key", "xi-api-key"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Bounded so the whole file stays well under CI's budget; each example is one local HTTP call.
FUZZ = settings(
    max_examples=60,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
)


# Rule 9's optional fields: which 200 bodies carried each, counted over a fuzz run.
OPTIONAL_FIELDS = ("transcription", "stage", "stageProgress", "queue")
# Seeded generations whose answers carry them, in every combination the rules allow.
SEEDED = [
    {"generationId": "gen-123", "apiProjectId": "proj-123"},  # failed: stage, no queue
    {"generationId": "gen-queued", "apiProjectId": "proj-123"},  # queue and transcription
    {"generationId": "gen-preparing"},  # queue while preprocessing runs, no transcription
    {"generationId": "gen-running", "apiProjectId": "proj-123"},  # stage and transcription
    {"generationId": "gen-done"},  # complete: transcription only
]


@dataclass
class Target:
    """The served function, a session reused for every call, and a valid seeded key."""

    url: str
    key: str
    session: requests.Session
    carried: Counter[str] = field(default_factory=Counter)

    def call(self, case: Any, *, key: str | None = None) -> int:
        if key is not None:
            # The generated auth headers would only ever meet 401: replace them with a real key.
            case.headers = {k: v for k, v in case.headers.items() if k.lower() not in AUTH_HEADERS}
            case.headers["X-Api-Key"] = key
        response = case.call(base_url=self.url, session=self.session, timeout=10)
        case.validate_response(response, checks=CHECKS)
        if response.status_code == 200:
            self.carried.update(name for name in OPTIONAL_FIELDS if name in response.json())
        return int(response.status_code)


@pytest.fixture(scope="module")
def served_url(serve_function_for_module: Callable[..., str]) -> str:
    # The fuzzer sends one key and many made-up ones as fast as it can: the limits would answer
    # 429 (conforming, tests/functions/test_openapi.py) instead of the answers under test here.
    return serve_function_for_module(
        KEY_RATE_LIMIT_PER_SECOND="0", REFUSED_KEYS_PER_ADDRESS_PER_MINUTE="0"
    )


@pytest.fixture
def target(served_url: str, seed: Seeder) -> Iterator[Target]:
    # The request example of openapi.yaml names gen-123 in proj-123: make it real so the
    # examples reach a 200; other generations give the fuzzer 403s and failed stages.
    key = seed.world("proj-123", "gen-123", has_video=True)
    seed.job("proj-123", "gen-123", "preProcessing", status="complete", jobId="job-pre")
    seed.job("proj-123", "gen-123", "inference", status="failed", error="GPU lost", progress=7)
    pending, available = {"status": "pending"}, {"status": "available"}
    queue = {"position": 2, "message": "Waiting for a GPU"}
    seed.generation("proj-123", "gen-queued", transcription=pending, queue=queue)
    seed.generation("proj-123", "gen-running", transcription=available, queue=queue)  # stale
    seed.job("proj-123", "gen-running", "preProcessing", status="complete")
    seed.job("proj-123", "gen-running", "inference", status="running", progress=45)
    seed.generation("proj-123", "gen-preparing", queue={"position": 0, "message": None})
    seed.job("proj-123", "gen-preparing", "preProcessing", status="running", progress=30)
    seed.generation("proj-123", "gen-done", transcription=available)
    for stage in ("preProcessing", "inference", "restoredVideo"):
        seed.job("proj-123", "gen-done", stage, status="complete")
    seed.world("proj-0", "0", user_id="someone-else")
    with requests.Session() as session:
        yield Target(served_url, key, session)


def run_fuzz(strategy: SearchStrategy[Any], test: Callable[[Any], int]) -> Counter[int]:
    """Run ``test`` on every generated case; return how often each status came back."""
    statuses: Counter[int] = Counter()

    @FUZZ
    @given(case=strategy)
    def fuzz(case: Any) -> None:
        statuses[test(case)] += 1

    fuzz()
    return statuses


def test_fuzzing_with_a_valid_key_reaches_past_auth(target: Target) -> None:
    def with_key(case: Any) -> int:
        return target.call(case, key=target.key)

    # Half random bodies, half the seeded generations (each as likely as the others).
    seeded = sampled_from(SEEDED).flatmap(
        lambda body: POST.as_strategy(GenerationMode.POSITIVE, body=body)
    )
    valid = POST.as_strategy(GenerationMode.POSITIVE) | seeded
    statuses = run_fuzz(valid, with_key)
    # Past auth: the seeded generations answer 200, random ids 404 (400 for ids > 1,500 bytes).
    assert statuses[200] > 0 and statuses[404] > 0, statuses
    assert set(statuses) <= {200, 400, 403, 404}, statuses
    # Bodies carrying each optional field were checked against openapi.yaml.
    assert all(target.carried[name] > 0 for name in OPTIONAL_FIELDS), (target.carried, statuses)

    # Invalid bodies are refused (negative_data_rejection); a case whose only flaw was in the
    # auth headers we replaced is valid again and may be answered like any other.
    statuses = run_fuzz(POST.as_strategy(GenerationMode.NEGATIVE), with_key)
    assert statuses[400] > 0, statuses
    assert set(statuses) <= {200, 400, 403, 404}, statuses


def test_fuzzing_with_generated_credentials_meets_401_or_400(target: Target) -> None:
    strategy = POST.as_strategy(GenerationMode.POSITIVE) | POST.as_strategy(GenerationMode.NEGATIVE)
    statuses = run_fuzz(strategy, target.call)
    assert statuses[401] > 0, statuses
    assert set(statuses) <= {400, 401}, statuses


def test_other_methods_conform(target: Target) -> None:
    for method in ("OPTIONS", "GET", "PUT", "PATCH", "DELETE"):
        statuses = run_fuzz(SCHEMA[PATH][method].as_strategy(), target.call)
        assert set(statuses) == ({204} if method == "OPTIONS" else {405}), (method, statuses)
