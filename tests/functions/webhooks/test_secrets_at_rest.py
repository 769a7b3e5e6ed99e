"""Signing secrets at rest: sealed for their endpoint, opened only there, never stored plain."""

from __future__ import annotations

import logging

import pytest
from google.cloud import firestore

from diffio_progress.core.endpoints import ENDPOINTS
from diffio_progress.core.errors import SecretUnavailable
from diffio_progress.functions.config import Settings
from diffio_progress.functions.secret_box import (
    LocalKey,
    SecretBox,
    build_secret_box,
    new_local_key,
    opened,
)
from diffio_progress.functions.webhooks.wiring import reset_default_webhook_handlers
from tests import secrecy
from tests.functions.events.receivers import Receiver
from tests.functions.webhooks.world import Api, Key, endpoint_docs, make_key
from tests.seed import Seeder

SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"


def box() -> SecretBox:
    return SecretBox(LocalKey.from_base64(new_local_key()))


def test_a_sealed_secret_opens_for_its_endpoint_only() -> None:
    sealing = box()
    sealed = sealing.seal("ep_a", SECRET)
    assert sealing.open("ep_a", sealed) == SECRET
    assert not [form for form in secrecy.encodings(SECRET) if form in sealed]
    with pytest.raises(SecretUnavailable, match="does not open"):
        sealing.open("ep_b", sealed)  # copied onto another endpoint
    with pytest.raises(SecretUnavailable, match="does not open"):
        box().open("ep_a", sealed)  # another key
    assert sealing.open("ep_a", SECRET) == SECRET  # a plain secret from before


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"webhook_secrets_local_key": new_local_key(), "on_cloud_run": True}, "K_SERVICE"),
        ({"webhook_secrets_local_key": "c2hvcnQ="}, "32 bytes"),
        ({"webhook_secrets_kms_key": "projects/p/keyRings/r"}, "cryptoKeys"),
        (
            {"webhook_secrets_local_key": new_local_key(), "webhook_secrets_kms_key": "x"},
            "not both",
        ),
    ],
)
def test_a_key_that_does_not_fit_is_refused_at_start(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_secret_box(Settings(**fields))  # type: ignore[arg-type]


def test_k_service_in_the_environment_refuses_the_local_key() -> None:
    env = {"WEBHOOK_SECRETS_LOCAL_KEY": new_local_key(), "K_SERVICE": "webhooks-configure"}
    with pytest.raises(ValueError, match="Cloud Run"):
        build_secret_box(Settings.from_env(env))
    assert build_secret_box(Settings.from_env({})) is None


@pytest.fixture
def writer(seed: Seeder) -> Key:
    return make_key(seed, "key_writer", webhooksWrite=True)


def test_without_a_key_configure_is_503_and_nothing_is_stored(
    api: Api, writer: Key, webhooks_db: firestore.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEBHOOK_SECRETS_LOCAL_KEY")
    reset_default_webhook_handlers()
    response = api.configure(
        writer, mode="live", url="http://127.0.0.1:9/h", eventTypes=["generation.failed"]
    )
    assert (response.status_code, response.get_json()["code"]) == (503, "webhooks_disabled")
    assert endpoint_docs(webhooks_db) == {}


def test_a_copied_ciphertext_is_a_failed_test_send_of_ours_with_one_error_line(
    api: Api,
    writer: Key,
    seed: Seeder,
    receiver: Receiver,
    webhooks_db: firestore.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    other = make_key(seed, "key_other", webhooksWrite=True)
    body = {"mode": "live", "url": receiver.url, "eventTypes": ["generation.failed"]}
    mine = api.configure(writer, **body).get_json()["webhook"]["endpointId"]
    theirs = api.configure(other, **body).get_json()["webhook"]["endpointId"]
    stolen = endpoint_docs(webhooks_db)[mine]["secret"]
    webhooks_db.document(ENDPOINTS, theirs).update({"secret": stolen})
    with caplog.at_level(logging.ERROR):
        answer = api.send_test(other, eventType="generation.failed", mode="live")
    assert answer.status_code == 200
    assert answer.get_json()["delivery"] == {
        "status": "failed",
        "httpStatus": None,
        "error": "the signing secret cannot be decrypted",
    }
    [line] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert line.fields == {"endpointId": theirs, "failureKind": "ours"}  # type: ignore[attr-defined]
    assert receiver.received == []
    with pytest.raises(SecretUnavailable):
        opened(None, theirs, endpoint_docs(webhooks_db)[theirs])


def test_after_configure_and_rotation_no_database_holds_a_secret_in_any_encoding(
    api: Api, writer: Key, db: firestore.Client, webhooks_db: firestore.Client
) -> None:
    body = {"mode": "live", "url": "http://127.0.0.1:9/h", "eventTypes": ["generation.failed"]}
    api.configure(writer, **body)
    api.configure(writer, **body, rotateSecret=True)
    api.configure(writer, **{**body, "mode": "test"})
    assert len(api.secrets) == 3
    for database in (db, webhooks_db):
        assert secrecy.secrets_in_database(database, api.secrets) == []
