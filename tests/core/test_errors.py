"""The error vocabulary (errors.py): one type per code, copied whole, branched on by type."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from diffio_progress.core.errors import (
    ApiError,
    ApiKeyExpired,
    BodyTooLarge,
    InvalidJson,
    KeyRefused,
    MethodNotAllowed,
    RateLimited,
    Unavailable,
)

PACKAGE = Path(__file__).resolve().parents[2] / "diffio_progress"


@pytest.mark.parametrize(
    ("error", "status", "body", "headers"),
    [
        (
            MethodNotAllowed(["POST", "OPTIONS"]),
            405,
            {"error": "Method not allowed; use POST", "code": "method_not_allowed"},
            {"Allow": "POST, OPTIONS"},
        ),
        (
            BodyTooLarge(65536),
            413,
            {"error": "Request body must be at most 65536 bytes", "code": "body_too_large"},
            {},
        ),
        (
            InvalidJson("duplicate key"),
            400,
            {"error": "Invalid JSON body: duplicate key", "code": "invalid_json"},
            {},
        ),
        (InvalidJson(), 400, {"error": "Invalid JSON body", "code": "invalid_json"}, {}),
        (
            RateLimited(RateLimited.PER_KEY, 3, {"RateLimit": '"key";r=0;t=3'}),
            429,
            {"error": "Too many requests for this API key; retry later", "code": "rate_limited"},
            {"Retry-After": "3", "RateLimit": '"key";r=0;t=3'},
        ),
        (
            Unavailable(),
            503,
            {"error": "Service temporarily unavailable; retry shortly", "code": "unavailable"},
            {"Retry-After": "1"},
        ),
    ],
)
def test_each_error_answers_its_status_body_and_headers(
    error: ApiError, status: int, body: dict[str, str], headers: dict[str, str]
) -> None:
    assert (error.status, error.body(), error.headers) == (status, body, headers)


@pytest.mark.parametrize("error", [ApiKeyExpired(), BodyTooLarge(10), MethodNotAllowed(["POST"])])
def test_a_copy_is_the_same_answer_of_the_same_type_raised_on_its_own(error: ApiError) -> None:
    clone = copy.copy(error)
    assert clone is not error and type(clone) is type(error)
    assert (clone.status, clone.body(), clone.headers) == (
        error.status,
        error.body(),
        error.headers,
    )
    clone.headers["X"] = "y"
    assert "X" not in error.headers


def test_a_refused_key_is_told_apart_by_its_type() -> None:
    with pytest.raises(KeyRefused):
        raise ApiKeyExpired()


def test_no_module_builds_an_error_from_a_status_or_compares_a_code_string() -> None:
    # Codes are declared once, as types: a compared string can be mistyped, a type cannot.
    pattern = re.compile(r'ApiError\(\s*\d{3}|\.code\s*(==|!=|in\b)|"code"\]\s*(==|!=)')
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in PACKAGE.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
