"""`webhooks add-endpoint` and `webhooks listen`: an endpoint for a key, a verifying receiver."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from google.cloud import firestore
from svix.webhooks import Webhook

from diffio_progress.core.endpoints import ENDPOINTS, check_secret, read_endpoint
from diffio_progress.functions.webhooks.endpoint_store import new_signing_secret
from diffio_progress.tools.cli import main
from diffio_progress.tools.emulator import free_port
from tests import secrecy
from tests.functions.webhooks.world import endpoint_docs, opened_docs
from tests.project import ROOT
from tests.seed import MINTED_SECRETS


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "sub", ["listen", "add-endpoint", "events", "attempts", "recover", "resend"]
)
def test_every_webhook_command_has_help_with_an_example(
    sub: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["webhooks", sub, "--help"])
    assert exit_.value.code == 0
    assert f"-m diffio_progress webhooks {sub}" in capsys.readouterr().out.split("example:")[1]


def test_add_endpoint_stores_the_contracts_document_and_prints_the_secret_once(
    db: firestore.Client, webhooks_db: firestore.Client
) -> None:
    code, out, err = run_cli(
        "webhooks",
        "add-endpoint",
        "--key-id",
        "key_0123",
        "--url",
        "https://hooks.example.com/diffio",
        "--event-types",
        "generation.completed, generation.failed",
    )
    assert code == 0, err
    secret = out.strip()
    MINTED_SECRETS.add(secret)
    assert out == secret + "\n" and check_secret(secret) == secret
    assert secret not in err and "shown only this once" in err
    [snapshot] = webhooks_db.collection(ENDPOINTS).get()
    assert db.collection(ENDPOINTS).get() == []  # never in (default)
    assert secrecy.secrets_in_database(webhooks_db, [secret]) == []  # sealed
    doc = opened_docs(webhooks_db)[snapshot.id]
    assert snapshot.id in err and doc["mode"] == "live"
    assert (doc["apiKeyId"], doc["url"], doc["secret"], doc["disabled"]) == (
        "key_0123",
        "https://hooks.example.com/diffio",
        secret,
        False,
    )
    endpoint = read_endpoint(snapshot.id, doc, allow_private=False)
    assert endpoint.event_types == {"generation.completed", "generation.failed"}
    # The same code as configure: a second call updates the one endpoint and keeps its secret.
    code, out, err = run_cli(
        "webhooks", "add-endpoint", "--key-id", "key_0123", "--url", "https://b.example.com/"
    )
    assert (code, out) == (0, "") and "secret kept" in err
    [(again_id, again)] = opened_docs(webhooks_db).items()
    assert (again_id, again.get("secret"), again.get("url")) == (
        snapshot.id,
        secret,
        "https://b.example.com/",
    )


def test_migrate_endpoints_moves_every_document_and_its_secret_out_of_default(
    db: firestore.Client, webhooks_db: firestore.Client
) -> None:
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    MINTED_SECRETS.add(secret)
    db.document(ENDPOINTS, "ep_old").set(
        {"apiKeyId": "key_1", "url": "https://a/", "secret": secret}
    )
    db.document(ENDPOINTS, "ep_test").set(
        {"apiKeyId": "key_1", "url": "https://a/", "secret": secret, "mode": "test"}
    )
    code, out, _ = run_cli("webhooks", "migrate-endpoints", "--dry-run")
    assert code == 0 and "Would move 2" in out and len(db.collection(ENDPOINTS).get()) == 2
    code, out, _ = run_cli("webhooks", "migrate-endpoints")
    assert code == 0 and "Moved 2" in out
    assert db.collection(ENDPOINTS).get() == []
    moved = opened_docs(webhooks_db)
    # Rotated as it moved: the old secret (readable in (default)) signs for 24 hours more.
    assert {i: (d["mode"], d["previousSecret"]) for i, d in moved.items()} == {
        "ep_old": ("live", secret),
        "ep_test": ("test", secret),
    }
    fresh = [d["secret"] for d in moved.values()]
    MINTED_SECRETS.update(fresh)
    assert secret not in fresh and len(set(fresh)) == 2
    overlap = moved["ep_old"]["previousSecretExpiresAt"] - datetime.now(UTC)
    assert timedelta(hours=23, minutes=59) < overlap <= timedelta(hours=24)
    for database in (db, webhooks_db):
        assert secrecy.secrets_in_database(database, [secret, *fresh]) == []


def test_encrypt_secrets_seals_plain_secrets_in_place_and_a_rerun_changes_nothing(
    db: firestore.Client, webhooks_db: firestore.Client
) -> None:
    secret, previous = new_signing_secret(), new_signing_secret()
    MINTED_SECRETS.update([secret, previous])
    webhooks_db.document(ENDPOINTS, "ep_plain").set(
        {"apiKeyId": "key_1", "url": "https://a/", "secret": secret, "previousSecret": previous}
    )
    code, out, _ = run_cli("webhooks", "encrypt-secrets")
    assert code == 0 and "Encrypted the secrets of 1 endpoint(s); 0 had none" in out, out
    assert secrecy.secrets_in_database(webhooks_db, [secret, previous]) == []
    stored = endpoint_docs(webhooks_db)["ep_plain"]
    assert opened_docs(webhooks_db)["ep_plain"]["previousSecret"] == previous
    code, out, _ = run_cli("webhooks", "encrypt-secrets")
    assert code == 0 and "of 0 endpoint(s); 1 had none" in out, out
    assert endpoint_docs(webhooks_db)["ep_plain"] == stored


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "ftp://x/"], "not usable"),
        (["--url", "https://x/", "--event-types", "generation.done"], "Unknown event types"),
    ],
)
def test_add_endpoint_refuses_a_bad_url_or_event_type_in_one_line(
    webhooks_db: firestore.Client, args: list[str], message: str
) -> None:
    code, out, err = run_cli("webhooks", "add-endpoint", "--key-id", "key_1", *args)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert webhooks_db.collection(ENDPOINTS).get() == []


def test_a_local_url_is_accepted_with_a_note_about_private_urls(db: firestore.Client) -> None:
    code, out, err = run_cli(
        "webhooks", "add-endpoint", "--key-id", "key_1", "--url", "http://127.0.0.1:8090/hook"
    )
    MINTED_SECRETS.add(out.strip())
    assert code == 0 and "WEBHOOK_ALLOW_PRIVATE_URLS=true" in err


def signed(secret: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    now = datetime.now(UTC)
    signature = Webhook(secret).sign(payload["eventId"], now, body.decode())
    return body, {
        "svix-id": payload["eventId"],
        "svix-timestamp": str(int(now.timestamp())),
        "svix-signature": signature,
        "content-type": "application/json",
    }


def test_listen_prints_verified_events_ignores_repeats_refuses_forgeries_stops_on_sigterm() -> None:
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    MINTED_SECRETS.add(secret)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "diffio_progress", "webhooks", "listen", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "DIFFIO_WEBHOOK_SECRET": secret},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"Listening on http://127.0.0.1:{port}/" in first
        payload = {
            "eventType": "generation.failed",
            "eventId": "evt_" + "1" * 32,
            "createdAt": "2025-06-01T12:00:00.000Z",
            "apiKeyId": "key_1",
            "apiProjectId": "proj-1",
            "generationId": "gen-1",
            "status": "error",
            "hasVideo": False,
            "modelKey": None,
            "error": "Inference failed",
            "errorDetails": "OOM",
        }
        url = first.split("Listening on ", 1)[1].split(";", 1)[0]
        body, headers = signed(secret, payload)
        assert httpx.post(url, content=body, headers=headers).status_code == 204
        line = process.stdout.readline()
        assert (
            "generation.failed" in line and "gen-1 (proj-1) error: Inference failed (OOM)" in line
        )
        assert "verified" in line
        # At least once: the same delivery again is acknowledged and not handled twice.
        assert httpx.post(url, content=body, headers=headers).status_code == 204
        assert f"repeat of {payload['eventId']}" in process.stdout.readline()
        forged, forged_headers = signed("whsec_" + base64.b64encode(b"x" * 24).decode(), payload)
        assert httpx.post(url, content=forged, headers=forged_headers).status_code == 401
        assert "refused a delivery" in process.stdout.readline()
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_listen_without_a_secret_is_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DIFFIO_WEBHOOK_SECRET"}
    result = subprocess.run(
        [sys.executable, "-m", "diffio_progress", "webhooks", "listen", "--port", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert (
        result.stderr == "error: No signing secret: set DIFFIO_WEBHOOK_SECRET or pass --secret.\n"
    )
