"""Mint and revoke API keys: only the key's SHA-256 document is ever stored (contract §1)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from diffio_progress.core import paths
from diffio_progress.core.auth import hash_api_key

TEST_PREFIX = "diffio_test_"
LIVE_PREFIX = "diffio_live_"
# keyPrefix shows this many characters after the prefix: enough to tell keys
# apart in a console, far too few to guess the other ~40.
_SHOWN_CHARS = 4
_TIMEOUT = 15.0


class KeyNotFound(LookupError):
    """No key document carries the given keyId."""


@dataclass(frozen=True)
class MintedKey:
    """A new key: ``key`` exists only here and in the caller's terminal."""

    key: str
    key_id: str
    key_hash: str
    document: dict[str, Any]


def mint_key(live: bool = False) -> str:
    """A new API key: a recognisable prefix and 256 random bits (43 URL-safe characters)."""
    return (LIVE_PREFIX if live else TEST_PREFIX) + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def key_document(
    key: str,
    *,
    user_id: str,
    key_id: str,
    created_at: datetime,
    read: bool = True,
    write: bool = False,
    expires_at: datetime | None = None,
    label: str | None = None,
    webhooks_write: bool = False,
) -> dict[str, Any]:
    """The contract §1 document for ``key`` (which it does not contain)."""
    prefix = LIVE_PREFIX if key.startswith(LIVE_PREFIX) else TEST_PREFIX
    document: dict[str, Any] = {
        "userId": user_id,
        "status": "active",
        "permissions": {"read": read, "write": write},
        "keyId": key_id,
        "keyPrefix": key[: len(prefix) + _SHOWN_CHARS],
        "createdAt": created_at,
    }
    if webhooks_write:
        document["permissions"]["webhooksWrite"] = True
    if expires_at is not None:
        document["expiresAt"] = expires_at
    if label:
        document["label"] = label
    return document


def create_key(
    db: firestore.Client,
    *,
    user_id: str,
    now: datetime,
    live: bool = False,
    read: bool = True,
    write: bool = False,
    expires_in: timedelta | None = None,
    label: str | None = None,
    webhooks_write: bool = False,
) -> MintedKey:
    """Mint a key and store its hash document; the caller shows ``key`` once and forgets it."""
    key = mint_key(live)
    key_id = new_key_id()
    document = key_document(
        key,
        user_id=user_id,
        key_id=key_id,
        created_at=now,
        read=read,
        write=write,
        expires_at=now + expires_in if expires_in is not None else None,
        label=label,
        webhooks_write=webhooks_write,
    )
    key_hash = hash_api_key(key)
    # create(), not set(): a document already at this hash must never be replaced.
    db.document(*paths.api_key(key_hash)).create(document, timeout=_TIMEOUT)
    return MintedKey(key=key, key_id=key_id, key_hash=key_hash, document=document)


def revoke_key(db: firestore.Client, key_id: str) -> int:
    """Set status ``revoked`` and ``revokedAt`` on the key with ``key_id``; returns how many.

    Raises ``KeyNotFound`` when no key has that id. Revoking twice is harmless:
    the first ``revokedAt`` is kept.
    """
    query = db.collection(paths.API_KEYS).where(filter=FieldFilter("keyId", "==", key_id))
    snapshots = list(query.stream(timeout=_TIMEOUT))
    if not snapshots:
        raise KeyNotFound(key_id)
    for snapshot in snapshots:
        if (snapshot.to_dict() or {}).get("status") == "revoked":
            continue
        snapshot.reference.update(
            {"status": "revoked", "revokedAt": firestore.SERVER_TIMESTAMP}, timeout=_TIMEOUT
        )
    return len(snapshots)
