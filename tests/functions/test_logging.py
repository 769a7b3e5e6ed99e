"""Structured logs: one Cloud Logging JSON line per request, with trace and ids, never a key."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from diffio_progress.functions.logs import LOGGER_NAME
from diffio_progress.tools import emulator
from tests import secrecy
from tests.log_records import JsonLines, LogCapture, kept
from tests.project import TEST_PROJECT
from tests.seed import MINTED_KEYS, Seeder

PATH = "/v1/get_generation_progress"
TRACE_ID = "105445aa7843bc8bf206b12000100000"
W3C_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_KEY = "logging.googleapis.com/trace"
SPAN_KEY = "logging.googleapis.com/spanId"


@pytest.fixture
def lines() -> Iterator[JsonLines]:
    with kept(JsonLines(), LOGGER_NAME) as handler:
        yield handler


def _only_line(lines: JsonLines) -> dict[str, Any]:
    # Request lines only: a Firestore read abandoned by an earlier test's outage may still
    # log its warning now. The served test below checks that nothing else is written.
    entries = lines.requests()
    assert len(entries) == 1, entries
    return entries[0]


def test_a_poll_writes_one_line_with_every_cloud_logging_field(
    client: Any, seed: Seeder, lines: JsonLines
) -> None:
    key = seed.api_key("user-1", key_id="key-public-1")
    seed.project("proj-1", "user-1")
    seed.generation("proj-1", "gen-1", "user-1")
    response = client.post(
        PATH,
        json={"generationId": "gen-1"},
        headers={
            "Authorization": f"Bearer {key}",
            "X-Cloud-Trace-Context": f"{TRACE_ID}/1;o=1",
            "User-Agent": "diffio-python/0.3",
        },
    )
    assert response.status_code == 200
    entry = _only_line(lines)
    assert entry["severity"] == "INFO"
    assert entry["message"] == f"POST {PATH} 200"
    http = entry["httpRequest"]
    assert (http["requestMethod"], http["status"], http["requestUrl"]) == ("POST", 200, PATH)
    assert http["userAgent"] == "diffio-python/0.3"
    # Cloud Logging's Duration form: seconds with a trailing "s".
    assert http["latency"].endswith("s") and float(http["latency"][:-1]) >= 0
    assert entry[TRACE_KEY] == f"projects/{TEST_PROJECT}/traces/{TRACE_ID}"
    assert entry[SPAN_KEY] == "0000000000000001"
    assert (entry["generationId"], entry["keyId"], entry["userId"]) == (
        "gen-1",
        "key-public-1",
        "user-1",
    )
    assert key not in json.dumps(entry)


@pytest.mark.parametrize(
    ("headers", "trace", "span"),
    [
        ({"X-Cloud-Trace-Context": f"{TRACE_ID}/123;o=1"}, TRACE_ID, f"{123:016x}"),
        ({"X-Cloud-Trace-Context": TRACE_ID.upper()}, TRACE_ID, None),
        (
            {"traceparent": f"00-{W3C_TRACE_ID}-00f067aa0ba902b7-01"},
            W3C_TRACE_ID,
            "00f067aa0ba902b7",
        ),
        (  # Cloud Run's own header wins when both are present.
            {
                "X-Cloud-Trace-Context": f"{TRACE_ID}/5",
                "traceparent": f"00-{W3C_TRACE_ID}-00f067aa0ba902b7-01",
            },
            TRACE_ID,
            f"{5:016x}",
        ),
        ({"X-Cloud-Trace-Context": "not-a-trace"}, None, None),
        ({"traceparent": "00-xyz-00f067aa0ba902b7-01"}, None, None),
        ({"X-Cloud-Trace-Context": f"{TRACE_ID}/{'9' * 5000}"}, TRACE_ID, None),
        ({}, None, None),
    ],
    ids=[
        "cloud trace",
        "cloud trace no span",
        "traceparent",
        "both",
        "bad cloud trace",
        "bad traceparent",
        "5000-digit span",
        "none",
    ],
)
def test_trace_comes_from_either_header(
    client: Any, lines: JsonLines, headers: dict[str, str], trace: str | None, span: str | None
) -> None:
    response = client.post(PATH, data=b"{", headers=headers)
    assert response.status_code == 400
    entry = _only_line(lines)
    expected = f"projects/{TEST_PROJECT}/traces/{trace}" if trace else None
    assert (entry.get(TRACE_KEY), entry.get(SPAN_KEY)) == (expected, span)


@pytest.mark.parametrize(
    ("make_request", "status", "fields"),
    [
        (lambda c, k: c.options(PATH), 204, {}),
        (lambda c, k: c.get(PATH), 405, {"code": "method_not_allowed"}),
        (lambda c, k: c.post(PATH, data=b"[1]"), 400, {"code": "invalid_body"}),
        (
            lambda c, k: c.post(PATH, json={"generationId": "gen-1"}),
            401,
            {"code": "api_key_missing", "generationId": "gen-1"},
        ),
        (
            lambda c, k: c.post(PATH, json={"generationId": "nope"}, headers={"X-Api-Key": k}),
            404,
            {"code": "generation_not_found", "generationId": "nope", "userId": "user-2"},
        ),
        (
            lambda c, k: c.post(PATH, json={"generationId": "gen-1"}, headers={"X-Api-Key": k}),
            403,
            {"code": "forbidden", "generationId": "gen-1", "userId": "user-2"},
        ),
    ],
    ids=["204", "405", "400", "401", "404", "403"],
)
def test_every_answer_writes_exactly_one_line_with_what_is_known(
    client: Any,
    seed: Seeder,
    lines: JsonLines,
    make_request: Callable[[Any, str], Any],
    status: int,
    fields: dict[str, str],
) -> None:
    seed.world()  # gen-1 belongs to user-1
    key = seed.api_key("user-2", key_id="key-of-user-2")
    response = make_request(client, key)
    assert response.status_code == status
    entry = _only_line(lines)
    assert entry["httpRequest"]["status"] == status
    assert entry["severity"] == "INFO"
    for name in ("code", "generationId", "userId", "keyId"):
        expected = fields.get(name)
        if name == "keyId" and "userId" in fields:
            expected = "key-of-user-2"
        assert entry.get(name) == expected, name
    assert key not in json.dumps(entry)


def test_an_outage_is_logged_at_error_with_its_request_line(
    client: Any, seed: Seeder, lines: JsonLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{emulator.free_port()}")
    monkeypatch.setenv("FIRESTORE_TIMEOUT_SECONDS", "1")
    response = client.post(PATH, json={"generationId": "gen-1"}, headers={"X-Api-Key": "k"})
    assert response.status_code == 503
    entry = _only_line(lines)
    assert (entry["severity"], entry["httpRequest"]["status"], entry["code"]) == (
        "ERROR",
        503,
        "unavailable",
    )


def test_a_key_in_the_query_string_is_not_logged(
    client: Any, seed: Seeder, lines: JsonLines
) -> None:
    key = seed.world()
    response = client.post(f"{PATH}?key={key}", json={"generationId": "gen-1"})
    assert response.status_code == 401
    entry = _only_line(lines)
    assert entry["httpRequest"]["requestUrl"] == PATH
    assert key not in json.dumps(entry)


def test_the_served_function_writes_only_json_lines_one_per_request_to_stdout(
    serve_function: Callable[..., str], seed: Seeder, server_log_dir: Path
) -> None:
    key = seed.world()
    url = serve_function()
    sent = [
        ("POST", {"generationId": "gen-1"}, {"X-Api-Key": key}, 200),
        ("POST", {"generationId": "gen-1"}, {"Xi-Api-Key": key + "x"}, 401),
        ("POST", {"generationId": "a/b"}, {}, 400),
        ("GET", None, {}, 405),
        (
            "POST",
            {"generationId": "gen-1"},
            {"traceparent": f"00-{W3C_TRACE_ID}-{'1' * 16}-01"},
            401,
        ),
    ]
    for number, (method, body, headers, status) in enumerate(sent):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            url + PATH,
            data=data,
            method=method,
            headers={**headers, "User-Agent": f"request-{number}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == status
        except urllib.error.HTTPError as error:
            assert error.code == status
    log_text = (server_log_dir / f"{urlsplit(url).port}.log").read_text()
    entries = [json.loads(line) for line in log_text.splitlines()]  # every line is JSON
    ours = [e for e in entries if e["httpRequest"]["userAgent"].startswith("request-")]
    assert [e["httpRequest"]["userAgent"] for e in ours] == [f"request-{n}" for n in range(5)]
    assert [e["httpRequest"]["status"] for e in ours] == [s for *_, s in sent]
    # Besides these, only the start-up probe's OPTIONS line was written.
    assert [e["httpRequest"]["requestMethod"] for e in entries if e not in ours] == ["OPTIONS"]
    assert ours[4][TRACE_KEY] == f"projects/{TEST_PROJECT}/traces/{W3C_TRACE_ID}"
    assert key not in log_text


def test_the_secrecy_check_sees_the_logs_and_would_catch_a_leak(
    client: Any, seed: Seeder, no_api_key_in_logs: LogCapture
) -> None:
    key = seed.world()
    assert key in MINTED_KEYS
    before = len(no_api_key_in_logs.lines)
    client.post(PATH, json={"generationId": "gen-1"}, headers={"X-Api-Key": key})
    captured = no_api_key_in_logs.lines[before:]
    assert any('"httpRequest"' in line for line in captured)
    assert secrecy.find_leaks([key], captured) == []
    leaks = secrecy.find_leaks([key], [*captured, f"oops {key}"])
    assert len(leaks) == 1 and key not in leaks[0]


def test_a_refused_key_is_logged_by_its_key_id_never_by_the_key(
    client: Any, seed: Seeder, lines: JsonLines
) -> None:
    key = seed.api_key("user-1", key_id="key-revoked-1", status="revoked")
    seed.project("proj-1", "user-1")
    seed.generation("proj-1", "gen-1", "user-1")
    response = client.post(
        PATH, json={"generationId": "gen-1", "apiProjectId": "proj-1"}, headers={"X-Api-Key": key}
    )
    assert response.status_code == 403
    entry = _only_line(lines)
    assert entry["keyId"] == "key-revoked-1"
    assert entry["code"] == "api_key_inactive"
    assert "userId" not in entry
    assert key not in json.dumps(entry)
