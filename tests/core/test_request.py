"""Pure request parsing (request.py): method, body and API-key headers."""

from __future__ import annotations

import json

import pytest

from diffio_progress.core.errors import ApiError
from diffio_progress.core.request import (
    ProgressQuery,
    check_method,
    client_address,
    extract_api_key,
    parse_body,
)


@pytest.mark.parametrize("method", ["POST", "OPTIONS"])
def test_post_and_options_are_allowed(method: str) -> None:
    check_method(method)


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "PATCH", "DELETE", "TRACE", "post"])
def test_other_methods_are_405_with_allow(method: str) -> None:
    with pytest.raises(ApiError) as caught:
        check_method(method)
    assert caught.value.status == 405
    assert caught.value.code == "method_not_allowed"
    assert caught.value.headers == {"Allow": "POST, OPTIONS"}


@pytest.mark.parametrize(
    ("body", "query"),
    [
        (b'{"generationId": "gen-1"}', ProgressQuery("gen-1")),
        (
            b'{"generationId": "gen-1", "apiProjectId": "proj-1"}',
            ProgressQuery("gen-1", "proj-1"),
        ),
        (b'{"generationId": "gen-1", "extra": [1, 2]}', ProgressQuery("gen-1")),
        (b'\xef\xbb\xbf{"generationId": "gen-1"}', ProgressQuery("gen-1")),  # UTF-8 BOM
        (b' \n{"generationId": "gen-1"}\n ', ProgressQuery("gen-1")),
        (
            json.dumps({"generationId": "gén-日本", "apiProjectId": "prój"}).encode(),
            ProgressQuery("gén-日本", "prój"),
        ),
        ('{"generationId": "gén-😀"}'.encode(), ProgressQuery("gén-😀")),
    ],
)
def test_parses_a_valid_body(body: bytes, query: ProgressQuery) -> None:
    assert parse_body(body) == query


INVALID_JSON = (400, "invalid_json", "Invalid JSON body")
NOT_OBJECT = (400, "invalid_body", "Invalid JSON body: expected a JSON object")
GENERATION_REQUIRED = (400, "generation_id_required", "generationId must be provided as a string")
BAD_GENERATION = (400, "invalid_generation_id", "generationId is not a valid id")
PROJECT_NOT_STRING = (400, "invalid_api_project_id", "apiProjectId must be a string when provided")
BAD_PROJECT = (400, "invalid_api_project_id", "apiProjectId is not a valid id")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", INVALID_JSON),
        (b"{", INVALID_JSON),
        (b"generationId=gen-1", INVALID_JSON),
        (b"{'generationId': 'gen-1'}", INVALID_JSON),
        (b'{"generationId": "gen-1"} trailing', INVALID_JSON),
        (b'{"generationId": NaN}', INVALID_JSON),
        (b'{"generationId": "gen-1", "x": Infinity}', INVALID_JSON),
        (
            b'{"generationId": "a", "generationId": "b"}',
            (400, "invalid_json", "Invalid JSON body: duplicate key"),
        ),
        (b'{"generationId": "\xff"}', (400, "invalid_json", "Invalid JSON body: not UTF-8")),
        (b"[" * 100_000, INVALID_JSON),
        (b"[" * 100_000 + b"]" * 100_000, INVALID_JSON),
        (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, INVALID_JSON),
        (b"[]", NOT_OBJECT),
        (b'["gen-1"]', NOT_OBJECT),
        (b'"gen-1"', NOT_OBJECT),
        (b"1", NOT_OBJECT),
        (b"null", NOT_OBJECT),
        (b"true", NOT_OBJECT),
        (b"{}", GENERATION_REQUIRED),
        (b'{"generationid": "gen-1"}', GENERATION_REQUIRED),
        (b'{"generationId": null}', GENERATION_REQUIRED),
        (b'{"generationId": 123}', GENERATION_REQUIRED),
        (b'{"generationId": true}', GENERATION_REQUIRED),
        (b'{"generationId": ["gen-1"]}', GENERATION_REQUIRED),
        (b'{"generationId": {"id": "gen-1"}}', GENERATION_REQUIRED),
        (b'{"generationId": ""}', GENERATION_REQUIRED),
        (b'{"generationId": "gen-1/jobs/inference"}', BAD_GENERATION),
        (b'{"generationId": "/"}', BAD_GENERATION),
        (b'{"generationId": "."}', BAD_GENERATION),
        (b'{"generationId": ".."}', BAD_GENERATION),
        (b'{"generationId": "__x__"}', BAD_GENERATION),
        (b'{"generationId": "gen\\u0000"}', BAD_GENERATION),
        (b'{"generationId": "\\ud800"}', BAD_GENERATION),
        (json.dumps({"generationId": "a" * 1501}).encode(), BAD_GENERATION),
        (b'{"generationId": "gen-1", "apiProjectId": null}', PROJECT_NOT_STRING),
        (b'{"generationId": "gen-1", "apiProjectId": 7}', PROJECT_NOT_STRING),
        (b'{"generationId": "gen-1", "apiProjectId": ["p"]}', PROJECT_NOT_STRING),
        (b'{"generationId": "gen-1", "apiProjectId": false}', PROJECT_NOT_STRING),
        (b'{"generationId": "gen-1", "apiProjectId": ""}', BAD_PROJECT),
        (b'{"generationId": "gen-1", "apiProjectId": "p/generations/g"}', BAD_PROJECT),
        (b'{"generationId": "gen-1", "apiProjectId": "__p__"}', BAD_PROJECT),
        (b'{"generationId": "gen-1", "apiProjectId": "\\udc00"}', BAD_PROJECT),
    ],
)
def test_refuses_a_bad_body_with_a_stable_code(body: bytes, expected: tuple[int, str, str]) -> None:
    with pytest.raises(ApiError) as caught:
        parse_body(body)
    error = caught.value
    assert (error.status, error.code, error.message) == expected
    assert error.body() == {"error": expected[2], "code": expected[1]}


def test_generation_id_is_checked_before_api_project_id() -> None:
    with pytest.raises(ApiError) as caught:
        parse_body(b'{"generationId": 1, "apiProjectId": 2}')
    assert caught.value.code == "generation_id_required"


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ({"Authorization": "Bearer k1"}, "k1"),
        ({"Authorization": "bearer k1"}, "k1"),
        ({"Authorization": "BEARER k1"}, "k1"),
        ({"Authorization": "BeArEr k1"}, "k1"),
        ({"Authorization": "  Bearer   k1  "}, "k1"),
        ({"X-Api-Key": "k2"}, "k2"),
        ({"Xi-Api-Key": "k3"}, "k3"),
        ({"X-Api-Key": " k2 "}, "k2"),
        # Precedence: Authorization, then X-Api-Key, then Xi-Api-Key.
        ({"Authorization": "Bearer k1", "X-Api-Key": "k2", "Xi-Api-Key": "k3"}, "k1"),
        ({"X-Api-Key": "k2", "Xi-Api-Key": "k3"}, "k2"),
        ({"Authorization": "Bearer k1", "Xi-Api-Key": "k3"}, "k1"),
        # A wrong scheme is not a key; the other headers are still tried.
        ({"Authorization": "Basic dXNlcjpwYXNz", "X-Api-Key": "k2"}, "k2"),
        ({"Authorization": "Token k1", "Xi-Api-Key": "k3"}, "k3"),
        ({"Authorization": "Bearer", "X-Api-Key": "k2"}, "k2"),
        ({"Authorization": "Bearer ", "X-Api-Key": "", "Xi-Api-Key": "k3"}, "k3"),
        # Nothing usable.
        ({}, None),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, None),
        ({"Authorization": "k1"}, None),
        ({"Authorization": "Bearer   "}, None),
        ({"Authorization": "Bearerk1"}, None),
        ({"X-Api-Key": "", "Xi-Api-Key": "  "}, None),
    ],
)
def test_extracts_the_api_key_by_precedence(headers: dict[str, str], key: str | None) -> None:
    assert extract_api_key(headers) == key


@pytest.mark.parametrize(
    ("forwarded_for", "hops", "address"),
    [
        (None, 1, "192.0.2.1"),  # no proxy: the socket's peer
        ("", 1, "192.0.2.1"),
        ("203.0.113.9", 1, "203.0.113.9"),
        # Entries on the left are the client's own words; the trusted proxy appended the last.
        ("10.0.0.1, 203.0.113.9", 1, "203.0.113.9"),
        ("1.2.3.4,203.0.113.9", 1, "203.0.113.9"),
        # Behind a load balancer: the client is one further left of the balancer's entry.
        ("10.0.0.1, 203.0.113.9, 35.191.0.1", 2, "203.0.113.9"),
        # Fewer entries than hops: the client may have written them all; the socket's peer.
        ("203.0.113.9", 2, "192.0.2.1"),
        ("6.6.6.6", 2, "192.0.2.1"),
        ("6.6.6.6, 203.0.113.9", 3, "192.0.2.1"),
        ("203.0.113.9", 0, "192.0.2.1"),  # no proxy trusted: the header is ignored
        (" , 203.0.113.9 ,", 1, "203.0.113.9"),
    ],
)
def test_the_client_address_is_what_the_trusted_proxies_saw(
    forwarded_for: str | None, hops: int, address: str
) -> None:
    assert client_address(forwarded_for, "192.0.2.1", hops) == address
