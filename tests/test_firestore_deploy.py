"""deploy/firestore.py releases the rules and requests the indexes, idempotently, without npm."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.project import ROOT
from tests.workflows import fake_gcloud

SCRIPT = ROOT / "deploy" / "firestore.py"


class FakeGoogle(ThreadingHTTPServer):
    """The Rules and Firestore Admin APIs as far as the script uses them, on 127.0.0.1."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.calls: list[tuple[str, str, Any, str]] = []
        self.releases: set[str] = set()
        self.indexes: set[str] = set()
        self.refuse = False


class Handler(BaseHTTPRequestHandler):
    server: FakeGoogle

    def log_message(self, *args: Any) -> None:
        pass

    def answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        self.server.calls.append((self.command, self.path, body, self.headers["Authorization"]))
        if self.server.refuse:
            return self.answer(403, {"error": {"status": "PERMISSION_DENIED"}})
        if self.path.endswith("/rulesets"):
            return self.answer(200, {"name": f"projects/p/rulesets/r{len(self.server.calls)}"})
        if "/releases" in self.path:
            name = body["release"]["name"] if self.command == "PATCH" else body["name"]
            if self.command == "PATCH" and name not in self.server.releases:
                return self.answer(404, {"error": {"status": "NOT_FOUND"}})
            self.server.releases.add(name)
            return self.answer(200, {"name": name})
        if self.path.endswith("/indexes"):
            key = self.path + json.dumps(body, sort_keys=True)
            if key in self.server.indexes:
                return self.answer(409, {"error": {"status": "ALREADY_EXISTS"}})
            self.server.indexes.add(key)
        return self.answer(200, {"name": "operations/x"})

    do_GET = do_POST = do_PATCH = handle_any


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    server = FakeGoogle()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run(google: FakeGoogle, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    url = f"http://127.0.0.1:{google.server_address[1]}"
    env = {**fake_gcloud(tmp_path), "FIREBASE_RULES_API": url, "FIRESTORE_ADMIN_API": url}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--project=p", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_rules_reach_both_databases_created_then_updated(
    google: FakeGoogle, tmp_path: Path
) -> None:
    for _ in range(2):
        result = run(google, tmp_path, "rules", "--database=(default)", "--database=webhooks")
        assert result.returncode == 0, result.stderr
    rulesets = [c for c in google.calls if c[1].endswith("/rulesets")]
    assert len(rulesets) == 2
    [source] = rulesets[0][2]["source"]["files"]
    assert source == {"name": "firestore.rules", "content": (ROOT / "firestore.rules").read_text()}
    assert google.releases == {
        "projects/p/releases/cloud.firestore",
        "projects/p/releases/cloud.firestore/webhooks",
    }
    methods = [(c[0], c[1]) for c in google.calls if "/releases" in c[1]]
    assert methods == [
        ("PATCH", "/v1/projects/p/releases/cloud.firestore"),
        ("POST", "/v1/projects/p/releases"),
        ("PATCH", "/v1/projects/p/releases/cloud.firestore/webhooks"),
        ("POST", "/v1/projects/p/releases"),
        ("PATCH", "/v1/projects/p/releases/cloud.firestore"),
        ("PATCH", "/v1/projects/p/releases/cloud.firestore/webhooks"),
    ]
    assert {c[3] for c in google.calls} == {"Bearer ya29.test-token"}


def test_the_indexes_file_becomes_admin_api_indexes_on_every_run(
    google: FakeGoogle, tmp_path: Path
) -> None:
    for _ in range(2):  # the second run finds the composite index there: not an error
        result = run(google, tmp_path, "indexes", "--database=(default)")
        assert result.returncode == 0, result.stderr
    spec = json.loads((ROOT / "firestore.indexes.json").read_text())
    base = "/v1/projects/p/databases/(default)/collectionGroups"
    composite = [c for c in google.calls if c[1].endswith("/indexes")]
    assert len(composite) == 2 * len(spec["indexes"])
    for call, index in zip(composite, spec["indexes"] * 2, strict=True):
        assert call[:2] == ("POST", f"{base}/{index['collectionGroup']}/indexes")
        assert call[2] == {"queryScope": index["queryScope"], "fields": index["fields"]}
    fields = [c for c in google.calls if "/fields/" in c[1]]
    [override] = spec["fieldOverrides"]
    path = f"{base}/{override['collectionGroup']}/fields/{override['fieldPath']}"
    assert [c[:2] for c in fields] == [("PATCH", f"{path}?updateMask=indexConfig")] * 2
    indexes = fields[0][2]["indexConfig"]["indexes"]
    # The collection-group one that a poll without apiProjectId needs, which gcloud cannot set.
    assert {
        "queryScope": "COLLECTION_GROUP",
        "fields": [{"fieldPath": "generationId", "order": "ASCENDING"}],
    } in indexes
    assert len(indexes) == len(override["indexes"])


def test_a_refusal_fails_the_step_without_printing_the_token(
    google: FakeGoogle, tmp_path: Path
) -> None:
    google.refuse = True
    result = run(google, tmp_path, "rules", "--database=(default)")
    assert result.returncode == 1
    assert "HTTP 403" in result.stderr and "PERMISSION_DENIED" in result.stderr
    assert "ya29" not in result.stdout + result.stderr


def test_the_webhooks_database_gets_the_relays_index_and_its_ttl_policies(
    google: FakeGoogle, tmp_path: Path
) -> None:
    webhooks = "--indexes-file=" + str(ROOT / "firestore.webhooks.indexes.json")
    result = run(google, tmp_path, "indexes", "--database=webhooks", webhooks)
    assert result.returncode == 0, result.stderr
    base = "/v1/projects/p/databases/webhooks/collectionGroups"
    patched = {c[1]: c[2] for c in google.calls if c[0] == "PATCH"}
    due = patched[f"{base}/events/fields/dueAt?updateMask=indexConfig"]
    # The relay's query: dueAt across every generation's events (a collection group).
    assert {
        "queryScope": "COLLECTION_GROUP",
        "fields": [{"fieldPath": "dueAt", "order": "ASCENDING"}],
    } in due["indexConfig"]["indexes"]
    for group in ("events", "webhookAttempts"):
        ttl = patched[f"{base}/{group}/fields/expiresAt?updateMask=indexConfig,ttlConfig"]
        assert ttl["ttlConfig"] == {} and ttl["indexConfig"] == {"indexes": []}
