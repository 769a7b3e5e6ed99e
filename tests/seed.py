"""Seed documents in exactly the shapes of the data contract (shared/design/firestore-contract.md).

Each helper writes one contract document with its documented fields; tests
override fields (or write broken ones) through keyword arguments.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore

STAGES = ("preProcessing", "inference", "restoredVideo")

# Every key the tests mint; conftest asserts at session end that none reached a log.
MINTED_KEYS: set[str] = set()
# Every other secret they make (webhook signing secrets, Svix tokens): the same check.
MINTED_SECRETS: set[str] = set()


def new_key() -> str:
    key = "diffio_test_" + secrets.token_urlsafe(32)
    MINTED_KEYS.add(key)
    return key


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass
class Seeder:
    db: firestore.Client

    def api_key(
        self,
        user_id: str = "user-1",
        *,
        key: str | None = None,
        key_id: str | None = None,
        **fields: Any,
    ) -> str:
        """apiKeys/{sha256(key)} (contract §1); returns the plaintext key."""
        key = key or new_key()
        MINTED_KEYS.add(key)
        doc: dict[str, Any] = {
            "userId": user_id,
            "status": "active",
            "permissions": {"read": True, "write": False},
            "keyId": key_id or f"key-{secrets.token_hex(4)}",
            "keyPrefix": key[:16],
            "label": "test key",
            "createdAt": datetime.now(UTC),
        }
        doc.update(fields)
        self.db.document("apiKeys", key_hash(key)).set(doc)
        return key

    def project(
        self,
        api_project_id: str,
        user_id: str = "user-1",
        *,
        has_video: bool = False,
        **fields: Any,
    ) -> None:
        """apiProjects/{apiProjectId} (contract §2)."""
        doc: dict[str, Any] = {"userId": user_id, "hasVideo": has_video}
        doc.update(fields)
        self.db.document("apiProjects", api_project_id).set(doc)

    def generation(
        self, api_project_id: str, generation_id: str, user_id: str = "user-1", **fields: Any
    ) -> None:
        """apiProjects/{p}/generations/{g} (contract §3)."""
        doc: dict[str, Any] = {
            "generationId": generation_id,
            "apiProjectId": api_project_id,
            "userId": user_id,
            "modelKey": "diffio-4.6-flash",
            "createdAt": datetime.now(UTC),
            "updatedAt": datetime.now(UTC),
        }
        doc.update(fields)
        self.db.document("apiProjects", api_project_id, "generations", generation_id).set(doc)

    def job(self, api_project_id: str, generation_id: str, stage: str, **fields: Any) -> None:
        """apiProjects/{p}/generations/{g}/jobs/{stage} (contract §4); fields as given."""
        doc: dict[str, Any] = {"updatedAt": datetime.now(UTC)}
        doc.update(fields)
        self.db.document(
            "apiProjects", api_project_id, "generations", generation_id, "jobs", stage
        ).set(doc)

    def world(
        self,
        api_project_id: str = "proj-1",
        generation_id: str = "gen-1",
        user_id: str = "user-1",
        *,
        has_video: bool = False,
        **project_fields: Any,
    ) -> str:
        """A key, a project and a generation owned by ``user_id``; returns the key."""
        key = self.api_key(user_id)
        self.project(api_project_id, user_id, has_video=has_video, **project_fields)
        self.generation(api_project_id, generation_id, user_id)
        return key
