"""Pure API-key decisions (auth.py): hashing, usability and ownership."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from diffio_progress.core.auth import Caller, authorize, check_owner, hash_api_key, header_bytes
from diffio_progress.core.errors import ApiError

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
# Marks a field to leave out of the key document.
DROP = object()


def key_doc(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "userId": "user-1",
        "status": "active",
        "permissions": {"read": True, "write": False},
        "keyId": "key-1",
    }
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not DROP}


@pytest.mark.parametrize("key", ["diffio_live_abc", "", "clé-日本", "a" * 512])
def test_hash_is_lowercase_hex_sha256_of_the_utf8_key(key: str) -> None:
    expected = hashlib.sha256(key.encode("utf-8")).hexdigest()
    assert hash_api_key(key) == expected
    assert hash_api_key(key.encode("utf-8")) == expected


def test_header_bytes_recovers_the_bytes_a_client_sent() -> None:
    # WSGI decodes header bytes as Latin-1; re-encoding recovers the UTF-8 the client sent.
    wire = "clé".encode().decode("latin-1")
    assert hash_api_key(header_bytes(wire)) == hashlib.sha256("clé".encode()).hexdigest()
    assert header_bytes("plain-key") == b"plain-key"


@pytest.mark.parametrize(
    ("doc", "caller"),
    [
        (key_doc(), Caller("user-1", "key-1")),
        (key_doc(keyId=DROP), Caller("user-1", None)),
        (key_doc(keyId=42), Caller("user-1", None)),
        (key_doc(expiresAt=NOW + timedelta(seconds=1)), Caller("user-1", "key-1")),
        (key_doc(expiresAt=None), Caller("user-1", "key-1")),
        (key_doc(permissions={"read": True}), Caller("user-1", "key-1")),
        (key_doc(permissions={"read": True, "write": True}), Caller("user-1", "key-1")),
    ],
)
def test_an_active_readable_key_authorizes_its_user(doc: dict[str, Any], caller: Caller) -> None:
    assert authorize(doc, NOW) == caller


INACTIVE = (403, "api_key_inactive", "API key is not active")
EXPIRED = (403, "api_key_expired", "API key is not active: it has expired")
NO_READ = (403, "permission_denied", "API key is missing read permission")


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (None, (401, "api_key_invalid", "Invalid API key")),
        (key_doc(status=DROP), INACTIVE),
        (key_doc(status="revoked"), INACTIVE),
        (key_doc(status="disabled"), INACTIVE),
        (key_doc(status="Active"), INACTIVE),  # "active" is the only usable value
        (key_doc(status=True), INACTIVE),
        (key_doc(userId=DROP), INACTIVE),
        (key_doc(userId=""), INACTIVE),
        (key_doc(userId=7), INACTIVE),
        (key_doc(expiresAt=NOW), EXPIRED),  # "at or before now"
        (key_doc(expiresAt=NOW - timedelta(days=1)), EXPIRED),
        (key_doc(expiresAt="2999-01-01T00:00:00Z"), INACTIVE),  # malformed fails closed
        (key_doc(expiresAt=datetime(2999, 1, 1)), INACTIVE),  # naive: fails closed
        (key_doc(expiresAt=4102444800), INACTIVE),
        (key_doc(permissions=DROP), NO_READ),
        (key_doc(permissions={}), NO_READ),
        (key_doc(permissions={"read": False, "write": True}), NO_READ),
        (key_doc(permissions={"read": "true"}), NO_READ),
        (key_doc(permissions={"read": 1}), NO_READ),
        (key_doc(permissions=["read"]), NO_READ),
        (key_doc(permissions="read"), NO_READ),
        # Inactive wins over a missing permission: the first reason a client can fix.
        (key_doc(status="revoked", permissions={}), INACTIVE),
    ],
)
def test_refuses_an_unusable_key(
    doc: dict[str, Any] | None, expected: tuple[int, str, str]
) -> None:
    with pytest.raises(ApiError) as caught:
        authorize(doc, NOW)
    assert (caught.value.status, caught.value.code, caught.value.message) == expected


OWNER = Caller("user-1", "key-1")


@pytest.mark.parametrize(
    ("project", "generation"),
    [
        ({"userId": "user-1"}, {"userId": "user-1"}),
        ({"userId": "user-1"}, {}),  # a generation without userId belongs to its project
    ],
)
def test_the_owner_may_read(project: dict[str, Any], generation: dict[str, Any]) -> None:
    check_owner(OWNER, project, generation)


@pytest.mark.parametrize(
    ("project", "generation"),
    [
        ({"userId": "user-2"}, {"userId": "user-2"}),
        ({"userId": "user-2"}, {"userId": "user-1"}),
        ({"userId": "user-1"}, {"userId": "user-2"}),
        ({}, {"userId": "user-1"}),
        ({"userId": None}, {"userId": "user-1"}),
        ({"userId": ["user-1"]}, {"userId": "user-1"}),
        ({"userId": "user-1"}, {"userId": 1}),
        ({"userId": "USER-1"}, {"userId": "user-1"}),
    ],
)
def test_anyone_else_gets_403(project: dict[str, Any], generation: dict[str, Any]) -> None:
    with pytest.raises(ApiError) as caught:
        check_owner(OWNER, project, generation)
    assert (caught.value.status, caught.value.code) == (403, "forbidden")
    assert caught.value.message == "API key does not own the project or generation"
