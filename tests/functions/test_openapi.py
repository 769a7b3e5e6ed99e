"""openapi.yaml is the published contract: real responses, one per status code, conform to it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import flask
import pytest
import schemathesis
import yaml
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from diffio_progress.core.errors import ApiError
from diffio_progress.functions.config import Settings
from diffio_progress.functions.progress.handler import ProgressHandler
from diffio_progress.tools import emulator
from tests.project import ROOT
from tests.seed import Seeder

SPEC_PATH = ROOT / "openapi.yaml"
PATH = "/v1/get_generation_progress"
RAW_SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
SCHEMA = schemathesis.openapi.from_path(str(SPEC_PATH))
CONFORMANCE = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

Send = Callable[..., Any]


def validate(method: str, response: Any, body: Any = None, *, server_error: bool = False) -> None:
    """Run schemathesis' conformance checks on one real response (raises on any failure)."""
    operation = SCHEMA[PATH][method]
    case = operation.Case(body=body, media_type="application/json") if body else operation.Case()
    checks = CONFORMANCE if server_error else [*CONFORMANCE, not_a_server_error]
    case.validate_response(response, checks=checks)


@dataclass(frozen=True)
class Scenario:
    """Seed the emulator, send one real request; ``status`` is what it must produce."""

    status: int
    method: str
    act: Callable[[Any, Seeder, pytest.MonkeyPatch], Any]
    body: dict[str, Any] | None = None


def _post(body: Any, **headers: str) -> Callable[[Any, Seeder, pytest.MonkeyPatch], Any]:
    def act(client: Any, seed: Seeder, monkeypatch: pytest.MonkeyPatch) -> Any:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return client.post(PATH, data=data, headers=headers)

    return act


def _audio(client: Any, seed: Seeder, monkeypatch: pytest.MonkeyPatch) -> Any:
    key = seed.world()
    seed.job("proj-1", "gen-1", "inference", status="running", progress=45, jobId="job-gpu")
    return client.post(PATH, json={"generationId": "gen-1"}, headers={"X-Api-Key": key})


def _video_complete(client: Any, seed: Seeder, monkeypatch: pytest.MonkeyPatch) -> Any:
    key = seed.world(has_video=True, audioOriginalMp3Ready=True)
    for stage in ("inference", "restoredVideo"):
        seed.job("proj-1", "gen-1", stage, status="complete", jobState="SUCCEEDED")
    return client.post(
        PATH,
        json={"generationId": "gen-1", "apiProjectId": "proj-1"},
        headers={"Authorization": f"Bearer {key}"},
    )


def _failed(client: Any, seed: Seeder, monkeypatch: pytest.MonkeyPatch) -> Any:
    key = seed.world(has_video=True)
    seed.job("proj-1", "gen-1", "inference", status="failed", error="GPU lost")
    return client.post(PATH, json={"generationId": "gen-1"}, headers={"Xi-Api-Key": key})


def _queued(client: Any, seed: Seeder, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Rule 9's four optional fields at once: queued, transcribing, at its first stage."""
    key = seed.world(has_video=True)
    seed.generation(
        "proj-1",
        "gen-1",
        transcription={"status": "pending"},
        queue={"position": 3, "message": "Waiting for a GPU"},
    )
    return client.post(PATH, json={"generationId": "gen-1"}, headers={"X-Api-Key": key})


def _inactive(client: Any, seed: Seeder, monkeypatch: pytest.MonkeyPatch) -> Any:
    key = seed.api_key(status="revoked")
    return client.post(PATH, json={"generationId": "gen-1"}, headers={"X-Api-Key": key})


def _expired(client: Any, seed: Seeder, monkeypatch: pytest.MonkeyPatch) -> Any:
    key = seed.api_key(expiresAt=datetime.now(UTC) - timedelta(days=1))
    return client.post(PATH, json={"generationId": "gen-1"}, headers={"X-Api-Key": key})


def _not_owner(client: Any, seed: Seeder, monkeypatch: pytest.MonkeyPatch) -> Any:
    seed.world(user_id="owner")
    key = seed.api_key("someone-else")
    return client.post(PATH, json={"generationId": "gen-1"}, headers={"X-Api-Key": key})


def _not_found(client: Any, seed: Seeder, monkeypatch: pytest.MonkeyPatch) -> Any:
    key = seed.api_key()
    return client.post(PATH, json={"generationId": "gen-404"}, headers={"X-Api-Key": key})


def _unknown_key(client: Any, seed: Seeder, monkeypatch: pytest.MonkeyPatch) -> Any:
    return client.post(PATH, json={"generationId": "gen-1"}, headers={"X-Api-Key": "nope"})


def _over_the_limit(client: Any, seed: Seeder, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("KEY_RATE_LIMIT_PER_SECOND", "1")
    monkeypatch.setenv("KEY_RATE_LIMIT_BURST", "1")
    key = seed.world()
    client.post(PATH, json={"generationId": "gen-1"}, headers={"X-Api-Key": key})
    return client.post(PATH, json={"generationId": "gen-1"}, headers={"X-Api-Key": key})


def _firestore_down(client: Any, seed: Seeder, monkeypatch: pytest.MonkeyPatch) -> Any:
    # Nothing listens on a port we just freed: every read fails fast, as in an outage.
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{emulator.free_port()}")
    monkeypatch.setenv("FIRESTORE_TIMEOUT_SECONDS", "1")
    return client.post(PATH, json={"generationId": "gen-1"}, headers={"X-Api-Key": "k"})


SCENARIOS = {
    "200 audio in progress": Scenario(200, "POST", _audio, {"generationId": "gen-1"}),
    "200 video complete": Scenario(200, "POST", _video_complete, {"generationId": "gen-1"}),
    "200 failed with error": Scenario(200, "POST", _failed, {"generationId": "gen-1"}),
    "200 queued with transcription": Scenario(200, "POST", _queued, {"generationId": "gen-1"}),
    "204 preflight": Scenario(204, "OPTIONS", lambda c, s, m: c.options(PATH)),
    "400 invalid json": Scenario(400, "POST", _post(b"{not json")),
    "400 not an object": Scenario(400, "POST", _post([1, 2])),
    "400 generationId missing": Scenario(400, "POST", _post({"apiProjectId": "p"})),
    "400 generationId path-shaped": Scenario(400, "POST", _post({"generationId": "a/b"})),
    "400 apiProjectId null": Scenario(
        400, "POST", _post({"generationId": "g", "apiProjectId": None})
    ),
    "401 missing key": Scenario(401, "POST", _post({"generationId": "g"})),
    "401 unknown key": Scenario(401, "POST", _unknown_key, {"generationId": "gen-1"}),
    "403 inactive key": Scenario(403, "POST", _inactive, {"generationId": "gen-1"}),
    "403 expired key": Scenario(403, "POST", _expired, {"generationId": "gen-1"}),
    "403 not the owner": Scenario(403, "POST", _not_owner, {"generationId": "gen-1"}),
    "404 generation missing": Scenario(404, "POST", _not_found, {"generationId": "gen-404"}),
    "405 GET": Scenario(405, "GET", lambda c, s, m: c.get(PATH)),
    "405 DELETE": Scenario(405, "DELETE", lambda c, s, m: c.delete(PATH)),
    "413 body too large": Scenario(413, "POST", _post(b" " * (64 * 1024 + 1))),
    "429 over the key's limit": Scenario(429, "POST", _over_the_limit, {"generationId": "gen-1"}),
    "503 firestore down": Scenario(503, "POST", _firestore_down, {"generationId": "gen-1"}),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_real_response_conforms_to_openapi(
    name: str, client: Any, seed: Seeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = SCENARIOS[name]
    response = scenario.act(client, seed, monkeypatch)
    assert response.status_code == scenario.status, response.get_data(as_text=True)
    validate(scenario.method, response, scenario.body, server_error=scenario.status >= 500)


def test_503_names_retry_after_in_seconds(client: Any, seed: Seeder, monkeypatch: Any) -> None:
    response = _firestore_down(client, seed, monkeypatch)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert response.get_json()["code"] == "unavailable"


class _BrokenStore:
    """A store with a bug in it: the only way to reach the generic 500 answer."""

    def get_documents(self, doc_paths: Any) -> Any:
        raise RuntimeError("a bug")

    def find_generations(self, generation_id: str) -> Any:
        raise RuntimeError("a bug")


def test_500_body_conforms_and_reveals_nothing_internal() -> None:
    handler = ProgressHandler(Settings(), _BrokenStore())  # type: ignore[arg-type]
    app = flask.Flask(__name__)
    app.add_url_rule(PATH, view_func=lambda: handler(flask.request), methods=["POST"])
    response = app.test_client().post(PATH, json={"generationId": "g"}, headers={"X-Api-Key": "k"})
    assert response.status_code == 500
    assert response.get_json() == {"error": "Internal error", "code": "internal_error"}
    validate("POST", response, {"generationId": "g"}, server_error=True)


# -- the checks above are only as good as the document: make sure it can fail ---------------


def _mutated(body: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    copied = copy.deepcopy(body)
    change(copied)
    return copied


MUTATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "stage without jobState": lambda b: b["inference"].pop("jobState"),
    "stage with an extra key": lambda b: b["inference"].update(extra=1),
    "progress above 100": lambda b: b["inference"].update(progress=101),
    "unknown stage status": lambda b: b["inference"].update(status="exploded"),
    "unknown overall status": lambda b: b.update(status="running"),
    "audio project with restoredVideo": lambda b: b.update(restoredVideo=b["inference"]),
    "error while not failed": lambda b: b.update(error="boom", errorDetails=None),
    "hasVideo missing": lambda b: b.pop("hasVideo"),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_document_rejects_a_nonconforming_200_body(name: str, client: Any, seed: Seeder) -> None:
    response = _audio(client, seed, pytest.MonkeyPatch())
    assert response.status_code == 200
    validate("POST", response, {"generationId": "gen-1"})
    response.set_data(json.dumps(_mutated(response.get_json(), MUTATIONS[name])))
    with pytest.raises(FailureGroup):
        validate("POST", response, {"generationId": "gen-1"})


QUEUED_MUTATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "queue with a negative position": lambda b: b["queue"].update(position=-1),
    "queue with a fractional position": lambda b: b["queue"].update(position=1.5),
    "queue without its message": lambda b: b["queue"].pop("message"),
    "queue with a number for message": lambda b: b["queue"].update(message=7),
    "queue with an extra key": lambda b: b["queue"].update(eta=30),
    "queue while inference runs": lambda b: b["inference"].update(status="running"),
    "transcription of unknown status": lambda b: b["transcription"].update(status="done"),
    "transcription without status": lambda b: b["transcription"].pop("status"),
    "transcription as a string": lambda b: b.update(transcription="pending"),
    "stage without stageProgress": lambda b: b.pop("stageProgress"),
    "stageProgress without index": lambda b: b["stageProgress"].pop("index"),
    "stageProgress index 0": lambda b: b["stageProgress"].update(index=0),
    "stageProgress of an unknown stage": lambda b: b["stageProgress"].update(stage="upload"),
    "unknown stage": lambda b: b.update(stage="upload"),
    "stage on a complete generation": lambda b: (b.pop("queue"), b.update(status="complete")),
}


@pytest.mark.parametrize("name", list(QUEUED_MUTATIONS))
def test_document_rejects_a_half_formed_optional_field(
    name: str, client: Any, seed: Seeder
) -> None:
    response = _queued(client, seed, pytest.MonkeyPatch())
    assert response.status_code == 200
    body = response.get_json()
    assert {"transcription", "stage", "stageProgress", "queue"} <= set(body)
    validate("POST", response, {"generationId": "gen-1"})
    response.set_data(json.dumps(_mutated(body, QUEUED_MUTATIONS[name])))
    with pytest.raises(FailureGroup):
        validate("POST", response, {"generationId": "gen-1"})


def test_document_rejects_an_error_code_under_the_wrong_status(client: Any) -> None:
    response = client.post(PATH, data=b"{", headers={})
    assert response.status_code == 400
    response.set_data(json.dumps({"error": "Generation not found", "code": "generation_not_found"}))
    with pytest.raises(FailureGroup):
        validate("POST", response, {"generationId": "g"})


def test_document_is_valid_openapi_and_validation_can_fail() -> None:
    SCHEMA.validate()
    broken = copy.deepcopy(RAW_SPEC)
    broken["paths"][PATH]["post"]["responses"]["200"] = {"content": {}}  # no description
    with pytest.raises(Exception, match="description"):
        schemathesis.openapi.from_dict(broken).validate()


def _documented_codes() -> dict[int, set[str]]:
    """Status -> the error codes openapi.yaml allows for it on POST, on any path."""
    responses = RAW_SPEC["components"]["responses"]
    result: dict[int, set[str]] = {}
    for item in RAW_SPEC["paths"].values():
        for status, response in item["post"]["responses"].items():
            name = response.get("$ref", "").rpartition("/")[2]
            if name in responses:
                schema = responses[name]["content"]["application/json"]["schema"]
                code = schema["properties"]["code"]
                codes = set(code["enum"]) if "enum" in code else {code["const"]}
                result.setdefault(int(status), set()).update(codes)
    return result


def _declared_errors(base: type[ApiError] = ApiError) -> list[tuple[int, str]]:
    """(status, code) of every ``ApiError`` subclass that names a code."""
    found: list[tuple[int, str]] = []
    for error in base.__subclasses__():
        if "code" in vars(error):
            found.append((error.status, error.code))
        found += _declared_errors(error)
    return found


def test_every_error_code_in_the_code_is_documented_under_its_status() -> None:
    declared = _declared_errors()
    assert len(declared) >= 15, declared  # every code is found
    codes = [code for _, code in declared]
    assert len(codes) == len(set(codes)), codes  # each code declared once
    raised = set(declared)
    documented = _documented_codes()
    for status, code in raised:
        assert code in documented.get(int(status), set()), (status, code)
    all_codes = set(RAW_SPEC["components"]["schemas"]["ErrorCode"]["enum"])
    assert {code for _, code in raised} == all_codes
    assert set().union(*documented.values()) == all_codes
