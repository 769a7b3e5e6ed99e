"""create-key and revoke-key on the emulator: only the hash document is stored; the key works."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

import pytest
from google.cloud import firestore

from diffio_progress.tools.cli import main
from tests.seed import Seeder

KEY_SHAPE = re.compile(r"diffio_(test|live)_[A-Za-z0-9_-]{43}")


def create(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    assert main(["create-key", *args]) == 0
    captured = capsys.readouterr()
    return captured.out, captured.err


def key_doc(db: firestore.Client, key: str) -> dict[str, Any]:
    snapshot = db.document("apiKeys", hashlib.sha256(key.encode()).hexdigest()).get()
    assert snapshot.exists
    return snapshot.to_dict() or {}


def test_create_key_prints_the_key_once_and_stores_only_its_hash_document(
    db: firestore.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    out, err = create(capsys, "--user-id", "user-7", "--label", "ci", "--expires-in-days", "30")

    key = out.strip()
    assert out == key + "\n"
    assert KEY_SHAPE.fullmatch(key) and key.startswith("diffio_test_")
    assert key not in err
    doc = key_doc(db, key)
    assert set(doc) == {
        "userId",
        "status",
        "permissions",
        "keyId",
        "keyPrefix",
        "createdAt",
        "expiresAt",
        "label",
    }
    assert doc["userId"] == "user-7"
    assert doc["status"] == "active"
    assert doc["permissions"] == {"read": True, "write": False}
    assert doc["label"] == "ci"
    assert doc["keyPrefix"] == key[:16]
    assert doc["expiresAt"] - doc["createdAt"] == timedelta(days=30)
    assert doc["keyId"] in err
    # Nothing stored anywhere lets someone rebuild the key.
    stored = [d.to_dict() for d in db.collection("apiKeys").stream()]
    assert key not in repr(stored)


def test_live_keys_have_the_live_prefix_and_write_is_opt_in(
    db: firestore.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = create(capsys, "--user-id", "u", "--live", "--write")
    key = out.strip()
    assert key.startswith("diffio_live_") and KEY_SHAPE.fullmatch(key)
    doc = key_doc(db, key)
    assert doc["permissions"] == {"read": True, "write": True}
    assert "expiresAt" not in doc


def test_every_key_is_new(db: firestore.Client, capsys: pytest.CaptureFixture[str]) -> None:
    keys = {create(capsys, "--user-id", "u")[0] for _ in range(3)}
    assert len(keys) == 3


def test_a_minted_key_reads_progress_until_it_is_revoked(
    seed: Seeder, client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    seed.project("proj-1", "user-1")
    seed.generation("proj-1", "gen-1", "user-1")
    key = create(capsys, "--user-id", "user-1")[0].strip()
    key_id = key_doc(seed.db, key)["keyId"]

    def poll() -> int:
        response = client.post(
            "/v1/get_generation_progress",
            json={"generationId": "gen-1", "apiProjectId": "proj-1"},
            headers={"Authorization": f"Bearer {key}"},
        )
        return int(response.status_code)

    assert poll() == 200

    assert main(["revoke-key", "--key-id", key_id]) == 0
    assert key_id in capsys.readouterr().out
    doc = key_doc(seed.db, key)
    assert doc["status"] == "revoked"
    assert doc["revokedAt"] >= doc["createdAt"]
    assert poll() == 403


def test_revoking_twice_keeps_the_first_revocation_time(
    db: firestore.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    key = create(capsys, "--user-id", "u")[0].strip()
    key_id = key_doc(db, key)["keyId"]
    assert main(["revoke-key", "--key-id", key_id]) == 0
    first = key_doc(db, key)["revokedAt"]

    assert main(["revoke-key", "--key-id", key_id]) == 0
    assert key_doc(db, key)["revokedAt"] == first


def test_revoking_an_unknown_key_id_fails_in_one_line(
    db: firestore.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["revoke-key", "--key-id", "key_nope"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "key_nope" in captured.err
