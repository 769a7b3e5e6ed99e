"""The function through its real entry point (main.py via functions-framework) on the emulator.

Requests that must be answered before any Firestore read use ``offline``, a
client whose Firestore address has nothing listening: had such a request
read anything, it would have been answered 503.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import firestore

from diffio_progress.functions.progress.wiring import reset_default_handler
from diffio_progress.tools import emulator
from tests import spec_example
from tests.seed import Seeder, new_key

PATH = "/v1/get_generation_progress"
ERROR_KEYS = {"error", "code"}
PENDING_STAGE = spec_example.PENDING_STAGE
COMPLETE_STAGE = spec_example.COMPLETE_STAGE

INVALID_JSON = ("invalid_json", "Invalid JSON body")
NOT_OBJECT = ("invalid_body", "Invalid JSON body: expected a JSON object")
GENERATION_REQUIRED = ("generation_id_required", "generationId must be provided as a string")
BAD_GENERATION = ("invalid_generation_id", "generationId is not a valid id")
PROJECT_NOT_STRING = ("invalid_api_project_id", "apiProjectId must be a string when provided")
BAD_PROJECT = ("invalid_api_project_id", "apiProjectId is not a valid id")
NOT_FOUND = ("generation_not_found", "Generation not found")
NOT_OWNER = ("forbidden", "API key does not own the project or generation")
INACTIVE = ("api_key_inactive", "API key is not active")
NO_READ = ("permission_denied", "API key is missing read permission")


@pytest.fixture
def offline(app: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A client of the function whose Firestore is unreachable (nothing listens there)."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{emulator.free_port()}")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "diffio-progress-offline")
    monkeypatch.setenv("FIRESTORE_TIMEOUT_SECONDS", "0.2")
    reset_default_handler()
    yield app.test_client()
    reset_default_handler()


def post(
    client: Any,
    body: Any = None,
    *,
    key: str | None = None,
    raw: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    path: str = PATH,
    content_type: str | None = "application/json",
) -> Any:
    """POST ``body`` as JSON (or ``raw``) with the key as a Bearer token."""
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    if content_type is not None:
        sent["Content-Type"] = content_type
    data = raw if raw is not None else json.dumps(body)
    return client.post(path, data=data, headers=sent)


def with_project(generation_id: str, project_id: str | None) -> dict[str, str]:
    body = {"generationId": generation_id}
    if project_id is not None:
        body["apiProjectId"] = project_id
    return body


def assert_error(response: Any, status: int, code: str, message: str | None = None) -> None:
    """A JSON error body of exactly ``error`` and ``code``, with CORS, at ``status``."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    body = response.get_json()
    assert set(body) == ERROR_KEYS
    assert body["code"] == code
    if message is not None:
        assert body["error"] == message


# -- 200: the seed's example -----------------------------------------------


def test_the_seed_example_round_trips_exactly(client: Any, seed: Seeder) -> None:
    key = seed.world("proj-123", "gen-123", has_video=True)
    seed.job(
        "proj-123",
        "gen-123",
        "preProcessing",
        jobId="job-pre",
        jobState="SUCCEEDED",
        status="complete",
        progress=100,
        statusMessage=None,
        error=None,
        errorDetails=None,
    )
    seed.job(
        "proj-123",
        "gen-123",
        "inference",
        jobId="job-cloud-run-gpu",
        jobState="RUNNING",
        status="running",
        progress=45,
        statusMessage="Processing audio",
    )
    seed.job(
        "proj-123",
        "gen-123",
        "restoredVideo",
        jobId="job-restored",
        jobState="PENDING",
        status="pending",
        progress=0,
        statusMessage="Queued",
    )
    for project_id in ("proj-123", None):
        response = post(client, with_project("gen-123", project_id), key=key)
        assert response.status_code == 200
        assert response.mimetype == "application/json"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.get_json() == spec_example.RESPONSE_WITH_STAGE


# -- 204 preflight, 405, CORS, any path ------------------------------------


@pytest.mark.parametrize("path", [PATH, "/", "/anything/else"])
def test_options_is_a_204_preflight_that_needs_no_key(offline: Any, path: str) -> None:
    response = offline.options(path, headers={"Origin": "https://app.example"})
    assert response.status_code == 204
    assert response.get_data() == b""
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert (
        response.headers["Access-Control-Allow-Headers"]
        == "Authorization, Content-Type, X-Api-Key, Xi-Api-Key"
    )
    assert response.headers["Access-Control-Max-Age"] == "3600"


def test_preflight_max_age_is_configurable(offline: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_MAX_AGE_SECONDS", "600")
    assert offline.options(PATH).headers["Access-Control-Max-Age"] == "600"


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "TRACE"])
def test_other_methods_get_405_with_allow(offline: Any, method: str) -> None:
    response = offline.open(PATH, method=method, data="{}", headers={"X-Api-Key": "k"})
    assert_error(response, 405, "method_not_allowed", "Method not allowed; use POST")
    assert response.headers["Allow"] == "POST, OPTIONS"


def test_head_gets_405_with_allow_and_no_body(offline: Any) -> None:
    response = offline.head(PATH)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST, OPTIONS"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.get_data() == b""


def test_every_response_carries_the_allowed_origin(client: Any, seed: Seeder) -> None:
    key = seed.world()
    inactive = seed.api_key(status="revoked")
    seed.world("proj-2", "gen-2", "user-2")
    origin = {"Origin": "https://app.example"}
    responses = [
        (200, post(client, {"generationId": "gen-1"}, key=key, headers=origin)),
        (204, client.options(PATH, headers=origin)),
        (400, post(client, raw=b"{", key=key, headers=origin)),
        (401, post(client, {"generationId": "gen-1"}, headers=origin)),
        (403, post(client, {"generationId": "gen-1"}, key=inactive, headers=origin)),
        (403, post(client, {"generationId": "gen-2"}, key=key, headers=origin)),
        (404, post(client, {"generationId": "nope"}, key=key, headers=origin)),
        (405, client.get(PATH, headers=origin)),
        (413, post(client, raw=b" " * (64 * 1024 + 1), key=key, headers=origin)),
    ]
    for status, response in responses:
        assert response.status_code == status
        assert response.headers["Access-Control-Allow-Origin"] == "*", status


def test_allowed_origins_are_configurable(
    client: Any, seed: Seeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    key = seed.world()

    def allowed_origin(response: Any) -> str:
        assert "Origin" in response.headers.get("Vary", "")
        return str(response.headers["Access-Control-Allow-Origin"])

    listed = {"Origin": "https://b.example"}
    for response in (
        client.options(PATH, headers=listed),
        post(client, {"generationId": "gen-1"}, key=key, headers=listed),
        post(client, {"generationId": "gen-1"}, headers=listed),
        client.get(PATH, headers=listed),
    ):
        assert allowed_origin(response) == "https://b.example"
    # An unlisted origin never sees itself echoed back, so a browser refuses the answer.
    other = {"Origin": "https://evil.example"}
    for response in (
        client.options(PATH, headers=other),
        post(client, {"generationId": "gen-1"}, key=key, headers=other),
        post(client, {"generationId": "gen-1"}, key=key),
        client.get(PATH, headers=other),
    ):
        assert allowed_origin(response) == "https://a.example"


def test_answers_on_any_url_path(client: Any, seed: Seeder) -> None:
    key = seed.world()
    paths = [PATH, "/", "/get_generation_progress", "/v2/a/b/c", f"{PATH}?generationId=x"]
    for path in paths:
        response = post(client, {"generationId": "gen-1"}, key=key, path=path)
        assert response.status_code == 200, path
        assert response.get_json()["generationId"] == "gen-1"


# -- 400: bodies, answered before any read ----------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", INVALID_JSON),
        (b"not json", INVALID_JSON),
        (b'{"generationId": "gen-1"', INVALID_JSON),
        (
            b'{"generationId": "a", "generationId": "b"}',
            ("invalid_json", "Invalid JSON body: duplicate key"),
        ),
        (b"[" * 60_000, INVALID_JSON),  # nested too deeply to parse, under the size limit
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, INVALID_JSON),
        (b'{"generationId": "\xff\xfe"}', ("invalid_json", "Invalid JSON body: not UTF-8")),
        (b"[]", NOT_OBJECT),
        (b'"gen-1"', NOT_OBJECT),
        (b"42", NOT_OBJECT),
        (b"null", NOT_OBJECT),
        (b"{}", GENERATION_REQUIRED),
        (b'{"generationId": null}', GENERATION_REQUIRED),
        (b'{"generationId": 1}', GENERATION_REQUIRED),
        (b'{"generationId": ["gen-1"]}', GENERATION_REQUIRED),
        (b'{"generationId": {"$gt": ""}}', GENERATION_REQUIRED),
        (b'{"generationId": ""}', GENERATION_REQUIRED),
        (b'{"generationId": "gen-1", "apiProjectId": 1}', PROJECT_NOT_STRING),
        (b'{"generationId": "gen-1", "apiProjectId": null}', PROJECT_NOT_STRING),
        (b'{"generationId": "gen-1", "apiProjectId": {"a": 1}}', PROJECT_NOT_STRING),
        (b'{"generationId": "gen-1", "apiProjectId": ""}', BAD_PROJECT),
    ],
)
def test_bad_bodies_get_400_with_the_seed_message_and_a_stable_code(
    offline: Any, raw: bytes, expected: tuple[str, str]
) -> None:
    assert_error(post(offline, raw=raw, key=new_key()), 400, *expected)


def test_json_nested_100000_deep_is_400_not_a_crash(
    offline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_BODY_BYTES", str(1024 * 1024))
    for raw in (b"[" * 100_000, b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000):
        assert_error(post(offline, raw=raw, key=new_key()), 400, *INVALID_JSON)


def test_a_body_over_the_limit_is_413_json(offline: Any) -> None:
    padded = '{"generationId": "gen-1"}' + " " * (64 * 1024)
    assert_error(post(offline, raw=padded, key=new_key()), 413, "body_too_large")
    # The default limit leaves 100,000 '[' too large to read, let alone parse.
    assert_error(post(offline, raw=b"[" * 100_000, key=new_key()), 413, "body_too_large")


def test_the_body_is_checked_before_the_key(offline: Any) -> None:
    assert_error(post(offline, raw=b"{"), 400, *INVALID_JSON)


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded"])
def test_content_type_is_ignored(client: Any, seed: Seeder, content_type: str | None) -> None:
    key = seed.world()
    response = post(client, {"generationId": "gen-1"}, key=key, content_type=content_type)
    assert response.status_code == 200
    assert response.get_json()["generationId"] == "gen-1"
    # A bad body is still this API's JSON error, never Flask's HTML.
    assert_error(post(client, raw="x", key=key, content_type=content_type), 400, *INVALID_JSON)


def test_unknown_body_fields_are_ignored(client: Any, seed: Seeder) -> None:
    key = seed.world()
    body = {"generationId": "gen-1", "userId": "user-2", "x": [1]}
    assert post(client, body, key=key).status_code == 200


# -- hostile ids -----------------------------------------------------------

HOSTILE_IDS = [
    "/",
    "gen-1/jobs/inference",
    "gen-1/",
    "/gen-1",
    ".",
    "..",
    "__x__",
    "__name__",
    "a" * 1501,
    "é" * 751,
    "gen-1\x00",
    "gen-1\n",
    "gen\x7f1",
    "gen\x9f1",
    "\ud800",
    "gen-\udc00",
]


@pytest.mark.parametrize("bad", HOSTILE_IDS)
def test_ids_that_can_never_be_document_ids_get_400(offline: Any, bad: str) -> None:
    # json.dumps escapes a lone surrogate as \ud800, exactly as a hostile client sends it.
    for body in ({"generationId": bad}, {"generationId": bad, "apiProjectId": "proj-1"}):
        assert_error(post(offline, raw=json.dumps(body), key=new_key()), 400, *BAD_GENERATION)
    body = {"generationId": "gen-1", "apiProjectId": bad}
    assert_error(post(offline, raw=json.dumps(body), key=new_key()), 400, *BAD_PROJECT)


def test_an_injected_path_never_reads_the_document_it_would_address(
    client: Any, seed: Seeder
) -> None:
    key = seed.world("proj-1", "gen-1")
    # Documents at exactly the paths the injected ids would address, shaped as generations.
    seed.job(
        "proj-1",
        "gen-1",
        "inference",
        generationId="gen-1/jobs/inference",
        apiProjectId="proj-1",
        userId="user-1",
        status="failed",
        error="LEAKED",
    )
    seed.db.document("apiProjects/proj-1/generations/gen-1/jobs/inference/generations/x").set(
        {"generationId": "x", "apiProjectId": "proj-1", "userId": "user-1", "error": "LEAKED"}
    )
    attempts = [
        {"generationId": "gen-1/jobs/inference", "apiProjectId": "proj-1"},
        {"generationId": "gen-1/jobs/inference"},
        {"generationId": "jobs/inference", "apiProjectId": "proj-1/generations/gen-1"},
        {"generationId": "x", "apiProjectId": "proj-1/generations/gen-1/jobs/inference"},
        {"generationId": "inference", "apiProjectId": "proj-1/generations/gen-1/jobs"},
    ]
    for body in attempts:
        response = post(client, body, key=key)
        assert response.status_code == 400, body
        assert "LEAKED" not in response.get_data(as_text=True)
    # Nor through the collection-group query: that document is not a contract generation.
    assert_error(post(client, {"generationId": "x"}, key=key), 404, *NOT_FOUND)
    # The real generation is untouched and still answers.
    assert post(client, {"generationId": "gen-1"}, key=key).get_json()["status"] == "failed"


def test_near_miss_ids_are_valid_and_simply_not_found(client: Any, seed: Seeder) -> None:
    key = seed.world("proj-1", "gen-1")
    near = ["a" * 1499, "gen-1 ", " gen-1", "GEN-1", "gen-１", "gen-1\u200b", "___", "_x_", "..."]
    for generation_id in near:
        for project_id in (None, "proj-1"):
            body = with_project(generation_id, project_id)
            assert_error(post(client, body, key=key), 404, *NOT_FOUND)


def test_valid_non_ascii_and_long_ids_work(client: Any, seed: Seeder) -> None:
    cases = [("prój-日本", "gén-ü-😀"), ("проект", "генерация"), ("p" * 1500, "g" * 1499)]
    key = seed.api_key("user-1")
    for project_id, generation_id in cases:
        seed.project(project_id, "user-1")
        seed.generation(project_id, generation_id, "user-1")
        seed.job(project_id, generation_id, "inference", status="running", progress=12)
        for sent_project in (None, project_id):
            response = post(client, with_project(generation_id, sent_project), key=key)
            assert response.status_code == 200
            result = response.get_json()
            assert (result["generationId"], result["apiProjectId"]) == (generation_id, project_id)
            assert result["inference"]["progress"] == 12


def test_an_id_at_the_1500_byte_limit_is_read_directly_but_cannot_be_searched(
    client: Any, seed: Seeder
) -> None:
    # Firestore refuses to query for a 1,500-byte value: the lookup without
    # apiProjectId finds nothing (404, never a 503); the direct read works.
    generation_id = "é" * 750
    key = seed.world("proj-1", generation_id)
    assert_error(post(client, {"generationId": generation_id}, key=key), 404, *NOT_FOUND)
    response = post(client, with_project(generation_id, "proj-1"), key=key)
    assert response.get_json()["generationId"] == generation_id


# -- 401 and the three headers ---------------------------------------------


def test_missing_key_is_401_before_any_read(offline: Any) -> None:
    for headers in ({}, {"Authorization": ""}, {"X-Api-Key": " "}, {"Xi-Api-Key": ""}):
        response = post(offline, {"generationId": "gen-1"}, headers=headers)
        assert_error(response, 401, "api_key_missing", "Missing API key")


def test_a_wrong_scheme_is_not_a_key(offline: Any) -> None:
    key = new_key()
    for authorization in (f"Basic {key}", f"Token {key}", key, f"Bearer:{key}", "Bearer"):
        response = post(
            offline, {"generationId": "gen-1"}, headers={"Authorization": authorization}
        )
        assert_error(response, 401, "api_key_missing", "Missing API key")


def test_an_overlong_key_is_401_before_any_read(offline: Any) -> None:
    response = post(offline, {"generationId": "gen-1"}, headers={"X-Api-Key": "k" * 513})
    assert_error(response, 401, "api_key_invalid", "Invalid API key")


def test_unknown_keys_are_401_invalid_before_404(client: Any, seed: Seeder) -> None:
    seed.world()
    for key in ("not-a-real-key", "diffio_live_" + "x" * 40, "Bearer", "clé"):
        for body in (
            {"generationId": "gen-1"},
            {"generationId": "nope"},
            {"generationId": "nope", "apiProjectId": "nope"},
        ):
            response = post(client, body, headers={"X-Api-Key": key})
            assert_error(response, 401, "api_key_invalid", "Invalid API key")


def test_each_auth_header_is_accepted(client: Any, seed: Seeder) -> None:
    key = seed.world()
    variants = [
        {"Authorization": f"Bearer {key}"},
        {"Authorization": f"bearer {key}"},
        {"Authorization": f"BEARER {key}"},
        {"Authorization": f"bEaReR  {key} "},
        {"X-Api-Key": key},
        {"x-api-key": key},
        {"Xi-Api-Key": key},
        {"XI-API-KEY": key},
        {"Authorization": "Basic dXNlcjpwYXNz", "X-Api-Key": key},
    ]
    for headers in variants:
        response = post(client, {"generationId": "gen-1"}, headers=headers)
        assert response.status_code == 200, headers


def test_header_precedence_is_bearer_then_x_api_key_then_xi_api_key(
    client: Any, seed: Seeder
) -> None:
    good = seed.world()
    bad = new_key()  # never stored: an invalid key
    cases = [
        ({"Authorization": f"Bearer {good}", "X-Api-Key": bad, "Xi-Api-Key": bad}, 200),
        ({"Authorization": f"Bearer {bad}", "X-Api-Key": good, "Xi-Api-Key": good}, 401),
        ({"X-Api-Key": good, "Xi-Api-Key": bad}, 200),
        ({"X-Api-Key": bad, "Xi-Api-Key": good}, 401),
        ({"Authorization": f"Basic {good}", "Xi-Api-Key": good}, 200),
    ]
    for headers, status in cases:
        assert post(client, {"generationId": "gen-1"}, headers=headers).status_code == status


def test_a_utf8_key_is_hashed_as_the_bytes_the_client_sent(client: Any, seed: Seeder) -> None:
    key = seed.api_key("user-1", key="diffio_test_clé_日本_" + new_key())
    seed.project("proj-1", "user-1")
    seed.generation("proj-1", "gen-1", "user-1")
    # On the wire the header is UTF-8 bytes; WSGI hands them over decoded as Latin-1.
    wire = key.encode("utf-8").decode("latin-1")
    response = post(client, {"generationId": "gen-1"}, headers={"X-Api-Key": wire})
    assert response.status_code == 200


# -- 403: unusable keys ----------------------------------------------------


def test_unusable_keys_get_403_with_or_without_project(client: Any, seed: Seeder) -> None:
    seed.world()
    cases = [
        ({"status": "revoked"}, INACTIVE),
        ({"status": "inactive"}, INACTIVE),
        ({"status": None}, INACTIVE),
        ({"status": "Active"}, INACTIVE),
        ({"expiresAt": "2999-01-01"}, INACTIVE),  # malformed expiry fails closed
        (
            {"expiresAt": datetime.now(UTC) - timedelta(seconds=1)},
            ("api_key_expired", "API key is not active: it has expired"),
        ),
        ({"permissions": {"read": False, "write": True}}, NO_READ),
        ({"permissions": {"write": True}}, NO_READ),
        ({"permissions": {"read": "true"}}, NO_READ),
        ({"permissions": None}, NO_READ),
        ({"permissions": ["read"]}, NO_READ),
    ]
    for fields, expected in cases:
        key = seed.api_key("user-1", **fields)
        # The same answer whether or not the generation exists: nothing leaks.
        for generation_id, project_id in [
            ("gen-1", None),
            ("gen-1", "proj-1"),
            ("nope", None),
            ("nope", "nope"),
        ]:
            body = with_project(generation_id, project_id)
            assert_error(post(client, body, key=key), 403, *expected)


def test_a_key_expiring_later_works(client: Any, seed: Seeder) -> None:
    seed.world()
    key = seed.api_key("user-1", expiresAt=datetime.now(UTC) + timedelta(days=1))
    assert post(client, {"generationId": "gen-1"}, key=key).status_code == 200


# -- 404 and the two lookups ------------------------------------------------


def test_unknown_generation_is_404(client: Any, seed: Seeder) -> None:
    key = seed.world("proj-1", "gen-1")
    seed.project("proj-2", "user-1")
    cases = [
        {"generationId": "nope"},
        {"generationId": "nope", "apiProjectId": "proj-1"},
        {"generationId": "gen-1", "apiProjectId": "nope"},
        {"generationId": "gen-1", "apiProjectId": "proj-2"},  # the caller's, but not its project
    ]
    for body in cases:
        assert_error(post(client, body, key=key), 404, *NOT_FOUND)


def test_a_generation_without_its_project_document_is_404(client: Any, seed: Seeder) -> None:
    key = seed.api_key("user-1")
    seed.generation("orphan", "gen-1", "user-1")
    for project_id in (None, "orphan"):
        assert_error(post(client, with_project("gen-1", project_id), key=key), 404, *NOT_FOUND)


def test_generations_outside_the_contract_layout_are_not_found(client: Any, seed: Seeder) -> None:
    key = seed.world("proj-1", "gen-1")
    shaped = {"generationId": "gen-x", "apiProjectId": "proj-1", "userId": "user-1"}
    seed.db.document("users/user-1/generations/gen-x").set(shaped)
    seed.db.document("apiProjects/proj-1/archive/a/generations/gen-x").set(shaped)
    seed.db.document("generations/gen-x").set(shaped)
    for project_id in (None, "proj-1"):
        assert_error(post(client, with_project("gen-x", project_id), key=key), 404, *NOT_FOUND)


def test_a_generation_whose_id_field_lies_is_not_found_by_it(client: Any, seed: Seeder) -> None:
    key = seed.world("proj-1", "gen-1")
    seed.generation("proj-1", "gen-real", "user-1", generationId="gen-claimed")
    assert_error(post(client, {"generationId": "gen-claimed"}, key=key), 404, *NOT_FOUND)
    assert post(client, with_project("gen-real", "proj-1"), key=key).status_code == 200


def test_a_deleted_generation_is_404_after_being_found(client: Any, seed: Seeder) -> None:
    key = seed.world("proj-1", "gen-1")
    assert post(client, {"generationId": "gen-1"}, key=key).status_code == 200
    seed.db.document("apiProjects/proj-1/generations/gen-1").delete()
    for project_id in (None, "proj-1", None):
        assert_error(post(client, with_project("gen-1", project_id), key=key), 404, *NOT_FOUND)


def test_lookup_without_project_id_finds_the_right_project(client: Any, seed: Seeder) -> None:
    key = seed.world("proj-a", "gen-1")
    seed.project("proj-b", "user-1")
    seed.generation("proj-b", "gen-2", "user-1")
    seed.job("proj-b", "gen-2", "inference", status="running", progress=70)
    for _ in range(2):  # the second round may use what the first learned
        result = post(client, {"generationId": "gen-2"}, key=key).get_json()
        assert (result["apiProjectId"], result["inference"]["progress"]) == ("proj-b", 70)
        assert post(client, {"generationId": "gen-1"}, key=key).get_json()["apiProjectId"] == (
            "proj-a"
        )


def test_progress_is_fresh_on_every_poll(client: Any, seed: Seeder) -> None:
    key = seed.world("proj-1", "gen-1")
    for progress in (10, 55, 90):
        seed.job("proj-1", "gen-1", "inference", status="running", progress=progress)
        for project_id in (None, "proj-1"):
            result = post(client, with_project("gen-1", project_id), key=key).get_json()
            assert result["inference"]["progress"] == progress


def test_a_project_that_gains_video_reports_its_video_stage(client: Any, seed: Seeder) -> None:
    key = seed.world("proj-1", "gen-1", has_video=False)
    assert "restoredVideo" not in post(client, {"generationId": "gen-1"}, key=key).get_json()
    seed.project("proj-1", "user-1", has_video=True)
    seed.job("proj-1", "gen-1", "restoredVideo", status="running", progress=5)
    result = post(client, {"generationId": "gen-1"}, key=key).get_json()
    assert result["hasVideo"] is True
    assert result["restoredVideo"]["progress"] == 5


# -- cross-tenant ----------------------------------------------------------


def test_another_users_key_gets_403_and_sees_nothing(client: Any, seed: Seeder) -> None:
    seed.world("proj-1", "gen-1", "user-1")
    seed.job("proj-1", "gen-1", "inference", status="failed", error="SECRET-ERROR")
    intruder = seed.world("proj-2", "gen-2", "user-2")
    for project_id in ("proj-1", None, "proj-1", None):
        response = post(client, with_project("gen-1", project_id), key=intruder)
        assert_error(response, 403, *NOT_OWNER)
        text = response.get_data(as_text=True)
        assert "SECRET-ERROR" not in text and "user-1" not in text and "proj-1" not in text
    # The intruder's own project does not contain the victim's generation.
    response = post(client, with_project("gen-1", "proj-2"), key=intruder)
    assert_error(response, 404, *NOT_FOUND)


def test_no_order_of_polls_lets_one_user_see_anothers_generation(client: Any, seed: Seeder) -> None:
    owner = seed.world("proj-1", "gen-1", "user-1")
    intruder = seed.world("proj-2", "gen-2", "user-2")
    sequence = [
        (intruder, "gen-1", None, 403),
        (owner, "gen-1", None, 200),
        (intruder, "gen-1", None, 403),
        (intruder, "gen-1", "proj-1", 403),
        (owner, "gen-1", "proj-1", 200),
        (intruder, "gen-1", None, 403),
        (owner, "gen-2", None, 403),
        (intruder, "gen-2", None, 200),
        (owner, "gen-2", "proj-2", 403),
        (owner, "gen-2", None, 403),
    ]
    for key, generation_id, project_id, status in sequence:
        response = post(client, with_project(generation_id, project_id), key=key)
        assert response.status_code == status, (generation_id, project_id)
        if status == 403:
            assert response.get_json() == {"error": NOT_OWNER[1], "code": NOT_OWNER[0]}
        else:
            assert response.get_json()["generationId"] == generation_id


def test_both_project_and_generation_must_be_owned(client: Any, seed: Seeder) -> None:
    cases = [
        ("user-1", "user-2", "user-1"),
        ("user-1", "user-2", "user-2"),
        ("user-2", "user-1", "user-1"),
    ]
    for n, (project_owner, generation_owner, caller) in enumerate(cases):
        key = seed.api_key(caller)
        seed.project(f"proj-{n}", project_owner)
        seed.generation(f"proj-{n}", f"gen-{n}", generation_owner)
        for project_id in (None, f"proj-{n}"):
            response = post(client, with_project(f"gen-{n}", project_id), key=key)
            assert_error(response, 403, *NOT_OWNER)


def test_same_generation_id_in_two_tenants_each_sees_their_own(client: Any, seed: Seeder) -> None:
    first = seed.world("proj-1", "gen-dup", "user-1")
    second = seed.world("proj-2", "gen-dup", "user-2")
    seed.job("proj-1", "gen-dup", "inference", status="running", progress=11)
    seed.job("proj-2", "gen-dup", "inference", status="running", progress=22)
    mine = {first: ("proj-1", 11), second: ("proj-2", 22)}
    # Whatever the other tenant polled before, with or without apiProjectId.
    sequence = [
        (first, "proj-1"),
        (second, None),
        (first, None),
        (second, None),
        (second, "proj-2"),
        (first, None),
        (first, None),
        (second, None),
    ]
    for key, project_id in sequence:
        response = post(client, with_project("gen-dup", project_id), key=key)
        assert response.status_code == 200
        result = response.get_json()
        assert (result["apiProjectId"], result["inference"]["progress"]) == mine[key]
    response = post(client, with_project("gen-dup", "proj-2"), key=first)
    assert_error(response, 403, *NOT_OWNER)


# -- contract rules 3-8 on the emulator --------------------------------------


@pytest.mark.parametrize("project_id", [None, "proj-1"])
def test_an_audio_project_has_two_stages_and_no_restored_video_key(
    client: Any, seed: Seeder, project_id: str | None
) -> None:
    key = seed.world(has_video=False)
    seed.job("proj-1", "gen-1", "restoredVideo", status="failed", error="not for audio")
    assert post(client, with_project("gen-1", project_id), key=key).get_json() == {
        "generationId": "gen-1",
        "apiProjectId": "proj-1",
        "status": "pending",
        "hasVideo": False,
        "preProcessing": PENDING_STAGE,
        "inference": PENDING_STAGE,
        **spec_example.current_stage("preProcessing", 1, 2),
    }


def test_a_video_project_with_no_job_documents_is_three_pending_stages(
    client: Any, seed: Seeder
) -> None:
    key = seed.world(has_video=True)
    result = post(client, {"generationId": "gen-1"}, key=key).get_json()
    assert result == {
        "generationId": "gen-1",
        "apiProjectId": "proj-1",
        "status": "pending",
        "hasVideo": True,
        "preProcessing": PENDING_STAGE,
        "inference": PENDING_STAGE,
        "restoredVideo": PENDING_STAGE,
        **spec_example.current_stage("preProcessing", 1, 3),
    }


def test_a_project_without_has_video_is_audio(client: Any, seed: Seeder) -> None:
    key = seed.api_key("user-1")
    seed.db.document("apiProjects/proj-1").set({"userId": "user-1"})
    seed.generation("proj-1", "gen-1")
    result = post(client, {"generationId": "gen-1"}, key=key).get_json()
    assert result["hasVideo"] is False
    assert "restoredVideo" not in result


def test_mp3_ready_completes_pre_processing_without_a_job_document(
    client: Any, seed: Seeder
) -> None:
    key = seed.world(audioOriginalMp3Ready=True)
    for project_id in ("proj-1", None):
        result = post(client, with_project("gen-1", project_id), key=key).get_json()
        assert result["preProcessing"] == COMPLETE_STAGE
        assert result["inference"] == PENDING_STAGE
        assert result["status"] == "processing"
        assert "error" not in result and "errorDetails" not in result


def test_overall_status_follows_the_stages(client: Any, seed: Seeder) -> None:
    key = seed.api_key("user-1")
    cases: list[tuple[bool, dict[str, str], str]] = [
        (False, {}, "pending"),
        (False, {"preProcessing": "queued", "inference": "WAITING"}, "pending"),
        (False, {"preProcessing": "complete"}, "processing"),
        (False, {"inference": "in_progress"}, "processing"),
        (False, {"inference": "mystery"}, "pending"),
        (False, {"preProcessing": "Completed", "inference": "SUCCEEDED"}, "complete"),
        (True, {"preProcessing": "complete", "inference": "done"}, "processing"),
        (
            True,
            {"preProcessing": "success", "inference": "complete", "restoredVideo": "complete"},
            "complete",
        ),
        (True, {"preProcessing": "complete", "restoredVideo": "CANCELED"}, "failed"),
        (False, {"preProcessing": "running", "inference": "Error"}, "failed"),
    ]
    for n, (video, jobs, status) in enumerate(cases):
        seed.project(f"proj-{n}", "user-1", has_video=video)
        seed.generation(f"proj-{n}", f"gen-{n}", "user-1")
        for stage, stored in jobs.items():
            seed.job(f"proj-{n}", f"gen-{n}", stage, status=stored, progress=50)
        result = post(client, {"generationId": f"gen-{n}"}, key=key).get_json()
        assert result["status"] == status, (video, jobs)
        for stage, stored in jobs.items():
            if stored.lower() in ("complete", "completed", "succeeded", "success", "done"):
                assert result[stage]["progress"] == 100
        assert ("error" in result) is (status == "failed")


def test_the_first_failed_stage_sets_the_top_level_error(client: Any, seed: Seeder) -> None:
    key = seed.world(has_video=True)
    seed.job("proj-1", "gen-1", "preProcessing", status="complete", progress=100)
    seed.job(
        "proj-1",
        "gen-1",
        "inference",
        jobId="job-inf",
        jobState="FAILED",
        status="failed",
        progress=63,
        error="Model crashed",
        errorDetails="exit code 137",
    )
    seed.job("proj-1", "gen-1", "restoredVideo", status="failed", error="Video failed too")
    result = post(client, {"generationId": "gen-1"}, key=key).get_json()
    assert result["status"] == "failed"
    assert (result["error"], result["errorDetails"]) == ("Model crashed", "exit code 137")
    assert result["inference"] == {
        "jobId": "job-inf",
        "jobState": "FAILED",
        "status": "failed",
        "progress": 63,
        "statusMessage": None,
        "error": "Model crashed",
        "errorDetails": "exit code 137",
    }
    assert result["restoredVideo"]["error"] == "Video failed too"


def test_a_failed_stage_without_error_gets_a_summary(client: Any, seed: Seeder) -> None:
    key = seed.world()
    seed.job("proj-1", "gen-1", "inference", status="error")
    result = post(client, {"generationId": "gen-1"}, key=key).get_json()
    assert (result["status"], result["error"], result["errorDetails"]) == (
        "failed",
        "inference failed",
        None,
    )


def test_progress_is_clamped_on_the_emulator(client: Any, seed: Seeder) -> None:
    key = seed.api_key("user-1")
    cases = [
        (-10, 0),
        (150, 100),
        (33.5, 33.5),
        ("45", 0),
        (True, 0),
        (None, 0),
        ([1, 2], 0),
        ({"v": 1}, 0),
        (float("nan"), 0),
        (float("inf"), 100),
    ]
    for n, (stored, reported) in enumerate(cases):
        seed.project(f"proj-{n}", "user-1")
        seed.generation(f"proj-{n}", f"gen-{n}", "user-1")
        seed.job(f"proj-{n}", f"gen-{n}", "inference", status="running", progress=stored)
        response = post(client, {"generationId": f"gen-{n}"}, key=key)
        assert response.status_code == 200
        # Strict JSON: NaN or Infinity would not parse.
        parsed = json.loads(response.get_data(), parse_constant=lambda c: pytest.fail(c))
        assert parsed["inference"]["progress"] == reported, stored


def test_malformed_documents_are_treated_as_missing_never_a_5xx(client: Any, seed: Seeder) -> None:
    key = seed.api_key("user-1")
    broken_jobs = [
        {"status": 3, "progress": "x", "jobId": 1, "jobState": ["RUNNING"], "statusMessage": {}},
        {"status": None, "error": 5, "errorDetails": True, "executionName": 7},
        {"status": ["failed"], "updatedAt": "yesterday"},
        {"status": "running", "progress": datetime.now(UTC)},
        {"status": "running", "progress": b"\x00\x01"},
        {"status": "running", "statusMessage": firestore.GeoPoint(1.0, 2.0)},
    ]
    for n, broken in enumerate(broken_jobs):
        seed.project(f"proj-{n}", "user-1", has_video=True)
        seed.generation(f"proj-{n}", f"gen-{n}", "user-1")
        seed.job(f"proj-{n}", f"gen-{n}", "inference", **broken)
        response = post(client, {"generationId": f"gen-{n}"}, key=key)
        assert response.status_code == 200, broken
        stage = response.get_json()["inference"]
        assert set(stage) == set(PENDING_STAGE)
        assert all(v is None or isinstance(v, str) for k, v in stage.items() if k != "progress")
        assert isinstance(stage["progress"], (int, float))
    broken_projects = [
        {"hasVideo": "yes", "audioOriginalMp3Ready": "true"},
        {"hasVideo": 1, "audioOriginalMp3Ready": 1},
        {"hasVideo": None, "audioOriginalMp3Ready": None},
        {"hasVideo": {"a": 1}, "audioOriginalMp3Ready": [True]},
    ]
    for n, fields in enumerate(broken_projects):
        seed.db.document("apiProjects", f"bad-{n}").set({"userId": "user-1", **fields})
        seed.generation(f"bad-{n}", f"bad-gen-{n}", "user-1")
        result = post(client, {"generationId": f"bad-gen-{n}"}, key=key).get_json()
        assert result["hasVideo"] is False
        assert result["preProcessing"] == PENDING_STAGE
        assert "restoredVideo" not in result


def test_malformed_key_and_generation_documents_never_5xx(client: Any, seed: Seeder) -> None:
    seed.world()
    broken_keys = [
        ({"userId": 42}, INACTIVE),
        ({"userId": None}, INACTIVE),
        ({"expiresAt": 12345}, INACTIVE),
        ({"permissions": "read"}, NO_READ),
    ]
    for fields, expected in broken_keys:
        key = seed.api_key("user-1", **fields)
        assert_error(post(client, {"generationId": "gen-1"}, key=key), 403, *expected)
    key = seed.api_key("user-1", keyId={"nested": True})
    assert post(client, {"generationId": "gen-1"}, key=key).status_code == 200
    cases = [
        ({"userId": None}, 200),
        ({"userId": 7}, 403),
        ({"generationId": 7}, 404),
        ({"apiProjectId": ["x"]}, 200),
    ]
    for n, (fields, status) in enumerate(cases):
        seed.project(f"proj-{n}", "user-1")
        seed.generation(f"proj-{n}", f"gen-{n}", "user-1", **fields)
        searched = post(client, {"generationId": f"gen-{n}"}, key=key)
        assert searched.status_code == status, fields
        assert searched.mimetype == "application/json"
        # With apiProjectId the generation is read directly, so only ownership can refuse it.
        direct = post(client, with_project(f"gen-{n}", f"proj-{n}"), key=key)
        assert direct.status_code == (200 if status == 404 else status), fields
