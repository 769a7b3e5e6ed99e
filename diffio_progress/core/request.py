"""Pure request parsing: body bytes into a query, headers into an API key."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import (
    GenerationIdRequired,
    InvalidApiProjectId,
    InvalidBody,
    InvalidGenerationId,
    InvalidJson,
    MethodNotAllowed,
)
from .ids import is_document_id

ALLOWED_METHODS = ("POST", "OPTIONS")
API_KEY_HEADERS = ("X-Api-Key", "Xi-Api-Key")
# No real key is this long; refusing early keeps a huge header from costing a read.
MAX_API_KEY_CHARS = 512


class HeaderLookup(Protocol):
    def get(self, key: str, /) -> str | None: ...


@dataclass(frozen=True)
class ProgressQuery:
    """A validated request: ids that are safe to use as Firestore document ids."""

    generation_id: str
    api_project_id: str | None = None


def check_method(method: str) -> None:
    if method not in ALLOWED_METHODS:
        raise MethodNotAllowed(ALLOWED_METHODS)


def parse_body(raw: bytes) -> ProgressQuery:
    """Validate the raw body; the Content-Type header is deliberately ignored."""
    data = parse_json_object(raw)
    generation_id = data.get("generationId")
    if not isinstance(generation_id, str) or not generation_id:
        raise GenerationIdRequired()
    if not is_document_id(generation_id):
        raise InvalidGenerationId()
    api_project_id = data.get("apiProjectId")
    if "apiProjectId" in data:
        if not isinstance(api_project_id, str):
            raise InvalidApiProjectId(InvalidApiProjectId.NOT_A_STRING)
        if not is_document_id(api_project_id):
            raise InvalidApiProjectId()
    return ProgressQuery(generation_id, api_project_id)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object: 400 ``invalid_json`` or ``invalid_body`` otherwise."""
    data = _load_json(raw)
    if not isinstance(data, dict):
        raise InvalidBody()
    return data


def extract_api_key(headers: HeaderLookup) -> str | None:
    """The key from ``Authorization: Bearer``, else ``X-Api-Key``, else ``Xi-Api-Key``.

    The scheme is case-insensitive. An ``Authorization`` header with another
    scheme (Basic, say) is not a key, so the other headers are still tried.
    """
    authorization = (headers.get("Authorization") or "").strip()
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    for name in API_KEY_HEADERS:
        value = (headers.get(name) or "").strip()
        if value:
            return value
    return None


def client_address(forwarded_for: str | None, peer: str | None, trusted_hops: int) -> str | None:
    """The caller's address: the ``trusted_hops``-th ``X-Forwarded-For`` entry from the right.

    Entries further left were written by the client and prove nothing; the
    rightmost ones were appended by proxies we trust (Google's front end appends
    the address it saw). With fewer entries than trusted hops, the request did
    not come through all of them and any entry may be the client's own words:
    the socket's peer, as without the header.
    """
    entries = [entry.strip() for entry in (forwarded_for or "").split(",") if entry.strip()]
    if trusted_hops < 1 or len(entries) < trusted_hops:
        return peer
    return entries[-trusted_hops]


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two generationIds in one body are ambiguous; proxies and we could disagree.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _load_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJson("not UTF-8") from None
    try:
        return json.loads(
            text.removeprefix("\ufeff"),
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_reject_constant,
        )
    except _DuplicateKey:
        raise InvalidJson("duplicate key") from None
    # RecursionError is what deeply nested JSON raises; it is not a ValueError.
    except (ValueError, RecursionError):
        raise InvalidJson() from None
