"""Helpers of the webhooks API tests: keys with permissions, calls through the entry points."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from google.cloud import firestore

from diffio_progress.core.endpoints import ENDPOINTS
from diffio_progress.functions.secret_box import LocalKey, SecretBox, opened
from tests.project import LOCAL_KEY
from tests.seed import MINTED_SECRETS, Seeder

CONFIGURE, TEST_EVENT = "webhooks_configure", "webhooks_send_test_event"
LIST_EVENTS, LIST_ATTEMPTS = "webhooks_list_events", "webhooks_list_attempts"
RECOVER, RESEND = "webhooks_recover", "webhooks_resend"
LOG_TARGETS = (LIST_EVENTS, LIST_ATTEMPTS, RECOVER, RESEND)
ALL_TYPES = [
    "generation.queued",
    "generation.processing",
    "generation.completed",
    "generation.failed",
]


@dataclass
class Key:
    key: str
    key_id: str
    user_id: str


def make_key(seed: Seeder, key_id: str, user_id: str = "user-1", **permissions: bool) -> Key:
    """A key of ``user_id`` with ``permissions`` (read only unless told)."""
    perms = {"read": True, "write": False, **permissions}
    key = seed.api_key(user_id, key_id=key_id, permissions=perms)
    return Key(key, key_id, user_id)


@dataclass
class Api:
    """The two entry points' Flask test clients; every secret they return is remembered."""

    clients: dict[str, Any]
    secrets: list[str] = field(default_factory=list)

    def post(self, target: str, key: Key | str | None, body: Any, **headers: str) -> Any:
        if key is not None:
            headers["Authorization"] = f"Bearer {key.key if isinstance(key, Key) else key}"
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        response = self.clients[target].post("/", data=data, headers=headers)
        answer = response.get_json(silent=True) or {}
        secret = (answer.get("webhook") or {}).get("signingSecret")
        if secret:
            MINTED_SECRETS.add(secret)
            self.secrets.append(secret)
        return response

    def configure(self, key: Key | str | None, **body: Any) -> Any:
        return self.post(CONFIGURE, key, body)

    def send_test(self, key: Key | str | None, **body: Any) -> Any:
        return self.post(TEST_EVENT, key, body)

    def list_events(self, key: Key | str | None, **body: Any) -> Any:
        return self.post(LIST_EVENTS, key, body)

    def list_attempts(self, key: Key | str | None, **body: Any) -> Any:
        return self.post(LIST_ATTEMPTS, key, body)

    def recover(self, key: Key | str | None, **body: Any) -> Any:
        return self.post(RECOVER, key, body)

    def resend(self, key: Key | str | None, **body: Any) -> Any:
        return self.post(RESEND, key, body)


def endpoint_docs(db: firestore.Client) -> dict[str, dict[str, Any]]:
    return {s.id: s.to_dict() or {} for s in db.collection(ENDPOINTS).get()}


def opened_docs(db: firestore.Client) -> dict[str, dict[str, Any]]:
    """The endpoint documents with their secrets opened by the tests' local key."""
    box = SecretBox(LocalKey.from_base64(LOCAL_KEY))
    return {i: opened(box, i, d) for i, d in endpoint_docs(db).items()}
