"""``on_generation_written`` in main.py, as Eventarc calls it: binary-mode CloudEvents over HTTP."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import functions_framework
import httpx
import pytest
from diffio import DiffioClient

from diffio_progress.core.events import PROCESSING_EVENT, QUEUED_EVENT
from diffio_progress.functions.events.wiring import reset_default_event_handler
from diffio_progress.tools.emulator import free_port
from diffio_progress.tools.processes import start_function, stop_group, wait_until_serving
from tests.functions.events.harness import Harness, Writes
from tests.functions.events.receivers import Receiver
from tests.project import ROOT, TEST_PROJECT

TRIPWIRE_SITE = ROOT / "tests" / "tripwire_site"


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """main.py's event function in this process, built from the environment per test."""
    monkeypatch.setenv("WEBHOOK_SINK", "direct")
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_URLS", "true")
    reset_default_event_handler()
    created = functions_framework.create_app(
        target="on_generation_written", source=str(ROOT / "main.py")
    )
    yield created.test_client()
    reset_default_event_handler()


def test_main_records_and_delivers_and_answers_200(
    app: Any, writes: Writes, harness: Harness, receiver: Receiver
) -> None:
    harness.endpoint(receiver.url)
    headers, body = writes.generation()
    response = app.post("/", headers=headers, data=body)
    assert response.status_code == 200
    assert [json.loads(r.body)["eventType"] for r in receiver.received] == [QUEUED_EVENT]


def test_a_failed_delivery_answers_200_and_is_scheduled_not_retried_by_eventarc(
    app: Any,
    writes: Writes,
    harness: Harness,
    receiver: Receiver,
    capfd: pytest.CaptureFixture[str],
) -> None:
    receiver.behaviour = "status:500"
    harness.endpoint(receiver.url)
    headers, body = writes.generation()
    assert app.post("/", headers=headers, data=body).status_code == 200
    assert "Traceback" not in capfd.readouterr().err
    assert harness.event_doc("generation.queued")["dueAt"] is not None  # the relay's now
    assert len(receiver.ids) == 1


def test_malformed_events_are_acknowledged(app: Any, writes: Writes) -> None:
    headers, _ = writes.generation()
    for body in (b"\x00\xff\xfe garbage", b""):
        assert app.post("/", headers=headers, data=body).status_code == 200
    outside = {**headers, "ce-document": "users/u1", "ce-subject": "documents/users/u1"}
    assert app.post("/", headers=outside, data=b"").status_code == 200


def test_the_served_function_handles_eventarcs_posts_and_dials_only_loopback(
    writes: Writes, harness: Harness, receiver: Receiver, server_log_dir: Path, firestore_host: str
) -> None:
    """functions-framework in its own process, as deployed, with the tripwire armed in it."""
    _, secret = harness.endpoint(receiver.url)
    port = free_port()
    log_path = server_log_dir / f"{port}.log"
    env = {
        **os.environ,
        "FIRESTORE_EMULATOR_HOST": firestore_host,
        "GOOGLE_CLOUD_PROJECT": TEST_PROJECT,
        "WEBHOOK_SINK": "direct",
        "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        "PYTHONPATH": os.pathsep.join([str(TRIPWIRE_SITE), str(ROOT)]),
    }
    with log_path.open("ab") as log:
        process = start_function(
            "on_generation_written", ROOT / "main.py", port, env=env, stdout=log
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_serving(process, url, 30)
        for write in (lambda: writes.generation(), lambda: writes.job("inference", "running")):
            headers, body = write()
            assert httpx.post(url, headers=headers, content=body, timeout=30).status_code == 200
    finally:
        stop_group(process)
    client = DiffioClient(apiKey="not-used", baseUrl="http://127.0.0.1:9/v1")
    kinds = [
        client.webhooks.verify_signature(payload=r.body, headers=r.headers, secret=secret).eventType
        for r in receiver.received
    ]
    assert kinds == [QUEUED_EVENT, PROCESSING_EVENT]
    text = log_path.read_text()
    assert "TRIPWIRE" not in text and "Traceback" not in text
    assert '"outcome": "recorded generation.processing"' in text
