"""Rule 9 through the real entry point on the emulator: every bad stored value of issue 13.

Whatever the dispatcher or the transcription step left in the generation
document, a poll answers 200 with a body that conforms to openapi.yaml; a
malformed field is absent (never half-formed) and logged as one warning.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from google.cloud import firestore

from diffio_progress.functions.config import Settings
from diffio_progress.functions.logs import LOGGER_NAME
from diffio_progress.tools import cloud_run_standin as standin_replies
from diffio_progress.tools.cloud_run_standin import CloudRunStandIn
from tests.counted_handler import BATCH, counted_handler
from tests.functions.test_openapi import validate
from tests.log_records import Records, kept
from tests.project import TEST_PROJECT
from tests.seed import Seeder

PATH = "/v1/get_generation_progress"
RULE_9_LOGGER = "diffio_progress.core.optional_fields"
GPU = "Waiting for a GPU"
# Values of every Firestore type that is not the one the contract asks for.
ODD_VALUES: list[Any] = [
    "available",
    7,
    -2.5,
    True,
    None,
    b"\x00\xff",
    datetime(2024, 1, 1, tzinfo=UTC),
    firestore.GeoPoint(1.0, 2.0),
    ["available"],
    {"nested": {"status": "available"}},
]


@pytest.fixture
def warnings() -> Iterator[Records]:
    """Captures the function's logs (the package logger does not propagate to the root)."""
    with kept(Records(), LOGGER_NAME) as handler:
        yield handler


def rule_9_warnings(logged: Records) -> list[str]:
    return [
        r.getMessage()
        for r in logged.records
        if r.name == RULE_9_LOGGER and r.levelno == logging.WARNING
    ]


def poll(
    client: Any,
    seed: Seeder,
    warnings: Records,
    jobs: dict[str, dict[str, Any]] | None = None,
    **generation: Any,
) -> dict[str, Any]:
    """Seed gen-1 with these generation fields and job documents; one conforming 200 poll."""
    key = seed.world()
    seed.generation("proj-1", "gen-1", "user-1", **generation)
    for stage, fields in (jobs or {}).items():
        seed.job("proj-1", "gen-1", stage, **fields)
    warnings.clear()
    request = {"generationId": "gen-1", "apiProjectId": "proj-1"}
    response = client.post(PATH, json=request, headers={"X-Api-Key": key})
    assert response.status_code == 200, response.get_data(as_text=True)
    validate("POST", response, request)
    body: dict[str, Any] = response.get_json()
    return body


# -- transcription ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "transcription",
    [
        *[value for value in ODD_VALUES if value is not None],
        {"status": "done"},
        {"status": "AVAILABLE"},
        {"status": " available"},
        {"status": None},
        {"status": ["available"]},
        {"status": {"value": "available"}},
        {},
    ],
    ids=repr,
)
def test_a_transcription_not_a_map_or_of_unknown_status_is_absent(
    client: Any, seed: Seeder, warnings: Records, transcription: Any
) -> None:
    body = poll(client, seed, warnings, transcription=transcription)
    assert "transcription" not in body
    assert len(rule_9_warnings(warnings)) == 1, rule_9_warnings(warnings)


@pytest.mark.parametrize("status", ["pending", "available", "unavailable"])
def test_a_known_transcription_is_reported_alone(
    client: Any, seed: Seeder, warnings: Records, status: str
) -> None:
    body = poll(client, seed, warnings, transcription={"status": status, "words": 812})
    assert body["transcription"] == {"status": status}
    assert rule_9_warnings(warnings) == []


# -- queue -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "queue",
    [
        {"position": -1, "message": GPU},
        {"position": -(2**63), "message": GPU},
        {"position": 1.5, "message": GPU},
        {"position": 2.0, "message": GPU},
        {"position": math.nan, "message": GPU},
        {"position": math.inf, "message": GPU},
        {"position": True, "message": GPU},
        {"position": False, "message": GPU},
        {"position": "3", "message": GPU},
        {"position": None, "message": GPU},
        {"position": [3], "message": GPU},
        {"message": GPU},
        {},
        *[value for value in ODD_VALUES if not isinstance(value, dict) and value is not None],
    ],
    ids=repr,
)
def test_a_queue_without_a_whole_non_negative_position_is_absent(
    client: Any, seed: Seeder, warnings: Records, queue: Any
) -> None:
    body = poll(client, seed, warnings, queue=queue)
    assert "queue" not in body
    assert body["status"] == "pending"  # the rest of the answer is untouched
    assert len(rule_9_warnings(warnings)) == 1, rule_9_warnings(warnings)


@pytest.mark.parametrize(
    "message", [value for value in ODD_VALUES if not isinstance(value, str | None)], ids=repr
)
def test_a_queue_message_not_a_string_is_null_and_the_position_stays(
    client: Any, seed: Seeder, warnings: Records, message: Any
) -> None:
    body = poll(client, seed, warnings, queue={"position": 4, "message": message})
    assert body["queue"] == {"position": 4, "message": None}
    assert len(rule_9_warnings(warnings)) == 1, rule_9_warnings(warnings)


@pytest.mark.parametrize(
    "queue",
    [
        {"position": 0, "message": "Next"},
        {"position": 2**63 - 1, "message": GPU},
        {"position": 3, "message": ""},
        {"position": 3, "message": "GPU ⏳ «europe-west4»"},
        {"position": 3},
        {"position": 3, "message": None},
    ],
    ids=repr,
)
def test_a_valid_queue_is_reported_whole(
    client: Any, seed: Seeder, warnings: Records, queue: dict[str, Any]
) -> None:
    body = poll(client, seed, warnings, queue=queue)
    assert body["queue"] == {"position": queue["position"], "message": queue.get("message")}
    assert rule_9_warnings(warnings) == []


DONE = {"status": "complete", "progress": 100}


@pytest.mark.parametrize(
    ("jobs", "status"),
    [
        ({"preProcessing": DONE, "inference": {"status": "running", "progress": 5}}, "processing"),
        ({"inference": {"status": "processing"}}, "processing"),  # a synonym of running
        ({"preProcessing": DONE, "inference": DONE}, "complete"),
        ({"preProcessing": DONE, "inference": {"status": "failed", "error": "x"}}, "failed"),
        ({"preProcessing": {"status": "failed", "error": "bad upload"}}, "failed"),
    ],
)
def test_a_stale_queue_is_absent_without_a_warning(
    client: Any,
    seed: Seeder,
    warnings: Records,
    jobs: dict[str, dict[str, Any]],
    status: str,
) -> None:
    body = poll(client, seed, warnings, jobs, queue={"position": 1, "message": GPU})
    assert body["status"] == status
    assert "queue" not in body
    assert rule_9_warnings(warnings) == []  # a dispatcher's leftover is expected, not malformed


def test_each_malformed_field_is_one_warning_and_the_rest_is_reported(
    client: Any, seed: Seeder, warnings: Records
) -> None:
    body = poll(
        client,
        seed,
        warnings,
        {"preProcessing": {"status": "running", "progress": 30}},
        transcription="available",
        queue={"position": -1, "message": GPU},
    )
    assert not {"transcription", "queue"} & set(body)
    assert (body["stage"], body["stageProgress"]["progress"]) == ("preProcessing", 30)
    assert len(rule_9_warnings(warnings)) == 2


def test_a_queue_seen_by_search_and_by_project_is_the_same(
    client: Any, seed: Seeder, warnings: Records
) -> None:
    direct = poll(client, seed, warnings, queue={"position": 2, "message": GPU})
    key = seed.api_key("user-1")
    searched = client.post(PATH, json={"generationId": "gen-1"}, headers={"X-Api-Key": key})
    assert searched.get_json() == direct
    assert direct["queue"] == {"position": 2, "message": GPU}


# -- live Cloud Run state and reads ---------------------------------------------------------


def test_a_dead_inference_execution_hides_the_queue(
    client: Any, seed: Seeder, warnings: Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = standin_replies.execution_name("inference-dead")
    with CloudRunStandIn() as standin:
        standin.script(name, standin_replies.failed(name))
        monkeypatch.setenv("CLOUD_RUN_LOOKUP", "true")
        monkeypatch.setenv("CLOUD_RUN_EMULATOR_HOST", standin.host_port)
        jobs = {"inference": {"status": "pending", "executionName": name}}
        body = poll(client, seed, warnings, jobs, queue={"position": 0, "message": GPU})
    assert (body["status"], body["stage"]) == ("failed", "inference")
    assert "queue" not in body


def test_the_four_fields_cost_no_extra_read(seed: Seeder) -> None:
    counted = counted_handler(Settings(project=TEST_PROJECT, api_key_cache_ttl=0))
    key = seed.world("proj-a", "gen-plain")
    seed.generation(
        "proj-a", "gen-full", transcription={"status": "pending"}, queue={"position": 1}
    )

    counted.poll(key, "gen-plain", "proj-a")  # the first poll also learns the project is audio
    plain = counted.poll(key, "gen-plain", "proj-a")
    full = counted.poll(key, "gen-full", "proj-a")

    assert {"transcription", "stage", "stageProgress", "queue"} <= set(full.body)
    assert (full.counts, full.reads) == (plain.counts, plain.reads)
    assert full.counts[BATCH] == 1
