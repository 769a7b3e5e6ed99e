"""Pure API-key decisions: hash, usable or not, and who owns what."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import ApiKeyExpired, ApiKeyInactive, ApiKeyInvalid, NotOwner, PermissionDenied

API_KEYS = "apiKeys"


@dataclass(frozen=True)
class Caller:
    """The authenticated caller; ``key_id`` is the only key identity we may log."""

    user_id: str
    key_id: str | None


def hash_api_key(key: str | bytes) -> str:
    """Lowercase hex SHA-256 of the key as the client sent it (UTF-8 bytes)."""
    raw = key if isinstance(key, bytes) else key.encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).hexdigest()


def header_bytes(value: str) -> bytes:
    """The raw bytes of a header value: WSGI decodes headers as Latin-1."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


def authenticate(key_doc: Mapping[str, Any] | None, now: datetime) -> Caller:
    """The caller a usable key document names at ``now`` (timezone-aware).

    No document: 401. Not ``active`` or expired: 403. A malformed
    ``expiresAt`` fails closed (403): the contract says to treat bad fields as
    missing, but a missing expiry would mean "never expires", which is the
    wrong way to fail for a credential.
    """
    if key_doc is None:
        raise ApiKeyInvalid()
    user_id = key_doc.get("userId")
    if key_doc.get("status") != "active" or not isinstance(user_id, str) or not user_id:
        raise ApiKeyInactive()
    expires_at = key_doc.get("expiresAt")
    if expires_at is not None:
        if not isinstance(expires_at, datetime) or expires_at.tzinfo is None:
            raise ApiKeyInactive()
        if expires_at <= now:
            raise ApiKeyExpired()
    key_id = key_doc.get("keyId")
    return Caller(user_id=user_id, key_id=key_id if isinstance(key_id, str) else None)


def permission(key_doc: Mapping[str, Any], name: str) -> bool:
    """Whether ``permissions.<name>`` is exactly ``true`` (anything else: not granted)."""
    permissions = key_doc.get("permissions")
    return isinstance(permissions, Mapping) and permissions.get(name) is True


def authorize(key_doc: Mapping[str, Any] | None, now: datetime) -> Caller:
    """``authenticate``, and 403 unless the key has ``permissions.read`` (a poll needs it)."""
    caller = authenticate(key_doc, now)
    assert key_doc is not None
    if not permission(key_doc, "read"):
        raise PermissionDenied()
    return caller


def check_owner(caller: Caller, project: Mapping[str, Any], generation: Mapping[str, Any]) -> None:
    """403 unless the caller owns the project and, when it names one, the generation."""
    if project.get("userId") != caller.user_id:
        raise NotOwner()
    generation_owner = generation.get("userId")
    # The contract requires userId on a generation; a document without one
    # still belongs to its project, whose owner we have just checked.
    if generation_owner is not None and generation_owner != caller.user_id:
        raise NotOwner()
