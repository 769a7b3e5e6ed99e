"""POST /v1/webhooks/configure through main.py's entry point on the emulator (direct sink)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import firestore

from diffio_progress.core.deliveries import pair_endpoint_id
from diffio_progress.core.endpoints import check_secret
from tests import secrecy
from tests.functions.webhooks.world import (
    ALL_TYPES,
    Api,
    Key,
    endpoint_docs,
    make_key,
    opened_docs,
)
from tests.races import race
from tests.seed import MINTED_SECRETS, Seeder

URL = "http://127.0.0.1:9/hooks/diffio"


@pytest.fixture
def writer(seed: Seeder) -> Key:
    return make_key(seed, "key_writer", webhooksWrite=True)


def configure_body(**fields: Any) -> dict[str, Any]:
    return {"mode": "live", "url": URL, "eventTypes": ["generation.completed"], **fields}


def test_the_first_call_creates_the_endpoint_and_shows_its_secret_once(
    api: Api, writer: Key, db: firestore.Client, webhooks_db: firestore.Client
) -> None:
    first = api.configure(writer, **configure_body())
    assert first.status_code == 200, first.get_json()
    webhook = first.get_json()["webhook"]
    check_secret(webhook["signingSecret"])
    assert webhook["endpointId"] == pair_endpoint_id("key_writer", "live")
    assert {k: webhook[k] for k in ("apiKeyId", "mode", "url", "eventTypes", "signing")} == {
        "apiKeyId": "key_writer",
        "mode": "live",
        "url": URL,
        "eventTypes": ["generation.completed"],
        "signing": "svix",
    }
    assert webhook["updatedByKeyId"] == "key_writer" and "svixEnv" not in webhook
    assert webhook["createdAt"].endswith("Z") and webhook["updatedAt"].endswith("Z")

    second = api.configure(writer, **configure_body(eventTypes=ALL_TYPES + ALL_TYPES[:1]))
    again = second.get_json()["webhook"]
    assert "signingSecret" not in again
    assert again["endpointId"] == webhook["endpointId"]
    assert again["eventTypes"] == ALL_TYPES  # repeats collapse
    [stored] = opened_docs(webhooks_db).values()
    assert stored["secret"] == webhook["signingSecret"] and stored["mode"] == "live"
    assert not endpoint_docs(db), "nothing about endpoints is in (default)"
    assert secrecy.secrets_in_database(db, api.secrets) == []
    assert secrecy.secrets_in_database(webhooks_db, api.secrets) == []


def test_one_endpoint_per_key_and_mode_even_when_first_calls_race(
    api: Api, writer: Key, webhooks_db: firestore.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SYNC_PER_KEY", "4")  # all four race, none is held back
    app = api.clients["webhooks_configure"].application
    answers: list[Any] = []

    def first_call() -> None:
        headers = {"Authorization": f"Bearer {writer.key}"}
        answers.append(app.test_client().post("/", json=configure_body(), headers=headers))

    race(*[first_call] * 4)
    # A call that keeps losing the race is told to retry (503): nothing of it was written.
    statuses = sorted(a.status_code for a in answers)
    assert 200 in statuses and set(statuses) <= {200, 503}, statuses
    answers = [a for a in answers if a.status_code == 200]
    for answer in answers:
        secret = answer.get_json()["webhook"].get("signingSecret")
        if secret:
            api.secrets.append(secret)
            MINTED_SECRETS.add(secret)
    shown = [a.get_json()["webhook"].get("signingSecret") for a in answers]
    assert len([s for s in shown if s]) == 1, "exactly one creator saw a secret"
    api.configure(writer, **configure_body(mode="test"))
    docs = opened_docs(webhooks_db)
    assert docs[pair_endpoint_id("key_writer", "live")]["secret"] in shown
    assert sorted(d["mode"] for d in docs.values()) == ["live", "test"]


def test_rotation_issues_a_new_secret_and_keeps_the_old_one_for_24_hours(
    api: Api, writer: Key, webhooks_db: firestore.Client
) -> None:
    old = api.configure(writer, **configure_body()).get_json()["webhook"]["signingSecret"]
    before = datetime.now(UTC)
    rotated = api.configure(writer, **configure_body(rotateSecret=True)).get_json()["webhook"]
    new = rotated["signingSecret"]
    assert new != old
    [stored] = opened_docs(webhooks_db).values()
    assert (stored["secret"], stored["previousSecret"]) == (new, old)
    assert secrecy.secrets_in_database(webhooks_db, [new, old]) == []
    overlap = stored["previousSecretExpiresAt"] - before
    assert timedelta(hours=24) <= overlap < timedelta(hours=24, minutes=1)
    unchanged = api.configure(writer, **configure_body(rotateSecret=False)).get_json()
    assert "signingSecret" not in unchanged["webhook"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": URL, "eventTypes": ALL_TYPES}, "invalid_mode"),
        (configure_body(mode="LIVE"), "invalid_mode"),
        (configure_body(mode=1), "invalid_mode"),
        (configure_body(url=None), "invalid_url"),
        (configure_body(url=7), "invalid_url"),
        (configure_body(url="https://example.com/" + "a" * 2048), "invalid_url"),
        (configure_body(url="/relative/hook"), "invalid_url"),
        (configure_body(url="ftp://127.0.0.1/hook"), "invalid_url"),
        (configure_body(url="https://user:pw@127.0.0.1/hook"), "invalid_url"),
        (configure_body(eventTypes=[]), "invalid_event_types"),
        (configure_body(eventTypes="generation.completed"), "invalid_event_types"),
        (configure_body(eventTypes=["generation.started"]), "invalid_event_types"),
        (configure_body(eventTypes=[1]), "invalid_event_types"),
        (configure_body(apiKeyId=""), "invalid_api_key_id"),
        (configure_body(apiKeyId=5), "invalid_api_key_id"),
        (configure_body(rotateSecret="yes"), "invalid_body"),
        (configure_body(rotateSecret=None), "invalid_body"),
        ([], "invalid_body"),
        ('{"mode": "live",', "invalid_json"),
    ],
)
def test_each_invalid_body_gets_its_code_and_nothing_is_stored(
    api: Api, writer: Key, webhooks_db: firestore.Client, body: Any, code: str
) -> None:
    response = api.post("webhooks_configure", writer, body)
    assert (response.status_code, response.get_json()["code"]) == (400, code)
    assert endpoint_docs(webhooks_db) == {}


def test_a_url_with_user_info_says_which_rule(api: Api, writer: Key) -> None:
    answer = api.configure(writer, **configure_body(url="https://u:p@127.0.0.1/h")).get_json()
    assert "credentials" in answer["error"]


@pytest.mark.parametrize(
    ("permissions", "status", "code"),
    [
        ({}, 403, "permission_denied"),
        ({"write": True}, 403, "permission_denied"),
        ({"webhooksWrite": "true"}, 403, "permission_denied"),
        ({"webhooksWrite": True}, 200, None),
        ({"admin": True}, 200, None),
    ],
)
def test_the_key_needs_webhooks_write_or_admin(
    api: Api, seed: Seeder, permissions: dict[str, Any], status: int, code: str | None
) -> None:
    key = make_key(seed, "key_p", **permissions)
    response = api.configure(key, **configure_body())
    assert response.status_code == status
    assert response.get_json().get("code") == code


def test_authentication_is_the_progress_functions(api: Api, seed: Seeder) -> None:
    assert api.configure(None, **configure_body()).get_json()["code"] == "api_key_missing"
    assert api.configure("nope", **configure_body()).get_json()["code"] == "api_key_invalid"
    expired = make_key(seed, "key_old", webhooksWrite=True)
    seed.api_key(
        "user-1",
        key=expired.key,
        key_id="key_old",
        expiresAt=datetime(2020, 1, 1, tzinfo=UTC),
        permissions={"webhooksWrite": True},
    )
    assert api.configure(expired, **configure_body()).get_json()["code"] == "api_key_expired"


def test_another_key_needs_admin_and_the_same_user(
    api: Api, seed: Seeder, writer: Key, webhooks_db: firestore.Client
) -> None:
    admin = make_key(seed, "key_admin", admin=True)
    make_key(seed, "key_sibling")
    make_key(seed, "key_stranger", user_id="user-2")
    refused = api.configure(writer, **configure_body(apiKeyId="key_sibling"))
    assert (refused.status_code, refused.get_json()["code"]) == (403, "forbidden")
    missing = api.configure(admin, **configure_body(apiKeyId="key_nobody"))
    stranger = api.configure(admin, **configure_body(apiKeyId="key_stranger"))
    assert missing.status_code == stranger.status_code == 404
    assert missing.get_json() == stranger.get_json()  # a missing key and another user's: alike
    assert missing.get_json()["code"] == "api_key_not_found"
    done = api.configure(admin, **configure_body(apiKeyId="key_sibling")).get_json()["webhook"]
    assert (done["apiKeyId"], done["updatedByKeyId"]) == ("key_sibling", "key_admin")
    assert [d["apiKeyId"] for d in endpoint_docs(webhooks_db).values()] == ["key_sibling"]


def test_webhooks_off_answers_503_and_stores_nothing(
    api: Api, writer: Key, webhooks_db: firestore.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffio_progress.functions.webhooks.wiring import reset_default_webhook_handlers

    monkeypatch.setenv("WEBHOOK_SINK", "off")
    reset_default_webhook_handlers()
    response = api.configure(writer, **configure_body())
    assert (response.status_code, response.get_json()["code"]) == (503, "webhooks_disabled")
    assert endpoint_docs(webhooks_db) == {}


def test_method_cors_and_body_limit_are_the_progress_functions(api: Api, writer: Key) -> None:
    client = api.clients["webhooks_configure"]
    assert client.options("/").status_code == 204
    wrong = client.get("/")
    assert (wrong.status_code, wrong.get_json()["code"]) == (405, "method_not_allowed")
    huge = api.post("webhooks_configure", writer, b"{" + b" " * 70_000 + b"}")
    assert (huge.status_code, huge.get_json()["code"]) == (413, "body_too_large")
    assert "Access-Control-Allow-Origin" in huge.headers


def test_configure_enables_a_disabled_endpoint_again_and_says_so(
    api: Api, writer: Key, webhooks_db: firestore.Client
) -> None:
    first = api.configure(writer, **configure_body()).get_json()["webhook"]
    assert first["disabled"] is False
    ref = webhooks_db.document("webhookEndpoints", first["endpointId"])
    # The relay disabled it (delivery-contract.md §3): a 410, say.
    ref.update({"disabled": True, "disabledReason": "gone", "disabledAt": datetime.now(UTC)})
    again = api.configure(writer, **configure_body())
    assert again.get_json()["webhook"]["disabled"] is False
    stored = ref.get().to_dict() or {}
    assert stored["disabled"] is False
    assert not {"disabledReason", "disabledAt", "failingSince"} & set(stored)
