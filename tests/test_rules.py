"""firestore.rules denies every client read and write; the server client still reads."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from google.cloud import firestore

from diffio_progress.tools import emulator
from tests.project import ROOT
from tests.seed import Seeder, key_hash

PROJECT = "diffio-rules-test"

# Every document path of the data contract (shared/design/firestore-contract.md).
DOCUMENTS = {
    "apiKeys": "apiKeys/{key_hash}",
    "apiProjects": "apiProjects/proj-1",
    "generations": "apiProjects/proj-1/generations/gen-1",
    "jobs": "apiProjects/proj-1/generations/gen-1/jobs/inference",
    # events-contract.md §4: the outbox, and the direct sink's endpoints (they hold secrets).
    "events": "apiProjects/proj-1/generations/gen-1/events/generation.queued",
    "webhookEndpoints": "webhookEndpoints/ep-1",
}


def _unsigned_id_token(user_id: str) -> str:
    """A Firebase ID token as the emulator accepts it (unsigned): a signed-in end user."""
    header = {"alg": "none", "typ": "JWT"}
    claims = {
        "iss": f"https://securetoken.google.com/{PROJECT}",
        "aud": PROJECT,
        "sub": user_id,
        "user_id": user_id,
        "iat": 1_700_000_000,
        "exp": 4_000_000_000,
        "auth_time": 1_700_000_000,
        "firebase": {"sign_in_provider": "password"},
    }

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}."


CLIENTS = {
    "unauthenticated": {},
    # The owner of the data, signed in with Firebase Auth, is still a client: denied too.
    "signed-in owner": {"Authorization": f"Bearer {_unsigned_id_token('user-1')}"},
}


class Rest:
    """The emulator's Firestore REST API, as a browser or mobile client would call it."""

    def __init__(self, host_port: str, project: str) -> None:
        self.base = f"http://{host_port}/v1/projects/{project}/databases/(default)/documents"

    def send(self, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> Any:
        url = self.base + path if path.startswith(":") else f"{self.base}/{path}"
        return requests.request(method, url, headers=headers, timeout=10, **kwargs)

    def operations(self, path: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
        """Every kind of client access to one document and its collection."""
        collection, _, doc_id = path.rpartition("/")
        field = {"fields": {"userId": {"stringValue": "attacker"}}}
        return {
            "get": ("GET", path, {}),
            "list": ("GET", collection, {}),
            "update": ("PATCH", path, {"json": field}),
            "create": ("POST", f"{collection}?documentId={doc_id}-new", {"json": field}),
            "delete": ("DELETE", path, {}),
        }


@pytest.fixture(scope="module")
def rules_emulator() -> Iterator[str]:
    """An emulator of our own, started with the rules that get deployed."""
    with emulator.FirestoreEmulator(rules=ROOT / "firestore.rules") as process:
        yield process.host_port


def _seed(host_port: str, project: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    """Seed the contract's documents with the server client; returns (client, key hash)."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", host_port)
    emulator.clear(host_port, project)
    db = firestore.Client(project=project)
    seeder = Seeder(db)
    key = seeder.world(has_video=True)
    seeder.job("proj-1", "gen-1", "inference", status="running", progress=10)
    # Each carries userId: the field an attacker's update below would overwrite.
    db.document(DOCUMENTS["events"]).set(
        {"userId": "user-1", "eventId": "evt_" + "0" * 32, "payload": {}, "deliveredAt": None}
    )
    db.document(DOCUMENTS["webhookEndpoints"]).set(
        {"userId": "user-1", "apiKeyId": "key-1", "url": "https://x/", "secret": "whsec_x"}
    )
    return db, key_hash(key)


@pytest.fixture
def admin(rules_emulator: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    return _seed(rules_emulator, PROJECT, monkeypatch)


@pytest.mark.parametrize("client_name", list(CLIENTS))
@pytest.mark.parametrize("collection", list(DOCUMENTS))
def test_clients_can_neither_read_nor_write_any_collection(
    rules_emulator: str, admin: tuple[Any, str], collection: str, client_name: str
) -> None:
    db, hashed = admin
    path = DOCUMENTS[collection].format(key_hash=hashed)
    rest = Rest(rules_emulator, PROJECT)
    for operation, (method, target, kwargs) in rest.operations(path).items():
        response = rest.send(method, target, CLIENTS[client_name], **kwargs)
        assert response.status_code == 403, (operation, response.text)
        assert response.json()["error"]["status"] == "PERMISSION_DENIED", operation
    # Nothing changed, and the server client (which bypasses rules) still reads it all.
    snapshot = db.document(path).get()
    assert snapshot.exists and (snapshot.to_dict() or {}).get("userId") != "attacker"
    assert not db.document(f"{path}-new").get().exists


@pytest.mark.parametrize("client_name", list(CLIENTS))
def test_clients_cannot_run_the_collection_group_query(
    rules_emulator: str, admin: tuple[Any, str], client_name: str
) -> None:
    db, _ = admin
    query = {"structuredQuery": {"from": [{"collectionId": "generations", "allDescendants": True}]}}
    response = Rest(rules_emulator, PROJECT).send(
        "POST", ":runQuery", CLIENTS[client_name], json=query
    )
    assert response.status_code == 403, response.text
    found = db.collection_group("generations").get()
    assert [g.id for g in found] == ["gen-1"]


def test_without_these_rules_the_same_requests_succeed(
    firestore_host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Control: the session emulator runs without rules (open), so a denial above comes
    # from firestore.rules and not from the request being malformed.
    project = "diffio-rules-control"
    db, hashed = _seed(firestore_host, project, monkeypatch)
    rest = Rest(firestore_host, project)
    path = DOCUMENTS["apiKeys"].format(key_hash=hashed)
    response = rest.send("GET", path, {})
    assert response.status_code == 200, response.text
    assert response.json()["fields"]["userId"] == {"stringValue": "user-1"}
    assert db.document(path).get().exists
    emulator.clear(firestore_host, project)
