"""Configure decides a URL's addresses by resolving its host (a resolver the test injects)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import flask
import pytest
from google.cloud import firestore

from diffio_progress.functions.config import Settings
from diffio_progress.functions.events.pinned_post import PinnedPoster
from diffio_progress.functions.webhooks.wiring import build_configure_handler
from tests.functions.webhooks.world import endpoint_docs, make_key
from tests.project import LOCAL_KEY, TEST_PROJECT
from tests.seed import MINTED_SECRETS, Seeder

# What the fake DNS knows; nothing here ever reaches a real resolver (the tripwire checks).
DNS = {
    "hooks.example.com": ["93.184.215.14"],
    "xn--hks-snaa.example.com": ["93.184.215.14"],
    "inside.example.com": ["10.0.0.7"],
    "mixed.example.com": ["93.184.215.14", "127.0.0.1"],
    "metadata.example.com": ["169.254.169.254"],
    "v6.example.com": ["::ffff:192.168.0.1"],
}


def resolve(host: str, port: int) -> list[str]:
    if host in DNS:
        return DNS[host]
    if host.replace(".", "").isdigit():
        return [host]
    raise OSError("no such name")


@pytest.fixture
def configure(db: firestore.Client, seed: Seeder) -> Iterator[Any]:
    key = make_key(seed, "key_writer", webhooksWrite=True)
    settings = Settings(
        project=TEST_PROJECT, webhook_sink="direct", webhook_secrets_local_key=LOCAL_KEY
    )
    handler = build_configure_handler(settings, PinnedPoster(resolve=resolve))
    app = flask.Flask("configure")

    def call(url: str) -> flask.Response:
        body = {"mode": "live", "url": url, "eventTypes": ["generation.completed"]}
        headers = {"Authorization": f"Bearer {key.key}"}
        with app.test_request_context("/", method="POST", json=body, headers=headers):
            response = handler(flask.request)
        secret = (response.get_json() or {}).get("webhook", {}).get("signingSecret")
        if secret:
            MINTED_SECRETS.add(secret)
        return response

    yield call


@pytest.mark.parametrize(
    "url",
    [
        "https://inside.example.com/hook",
        "https://mixed.example.com/hook",
        "https://metadata.example.com/hook",
        "https://v6.example.com/hook",
        "https://nowhere.example.com/hook",
        "https://10.1.2.3/hook",
        "https://[::1]/hook",
        "http://hooks.example.com/hook",
    ],
)
def test_a_host_that_is_or_resolves_to_a_refused_address_is_invalid_url(
    configure: Any, webhooks_db: firestore.Client, url: str
) -> None:
    response = configure(url)
    assert (response.status_code, response.get_json()["code"]) == (400, "invalid_url")
    assert endpoint_docs(webhooks_db) == {}


def test_a_public_host_is_accepted_without_any_connection(
    configure: Any, webhooks_db: firestore.Client
) -> None:
    response = configure("https://hooks.example.com/hook")
    assert response.status_code == 200, response.get_json()
    assert [d["url"] for d in endpoint_docs(webhooks_db).values()] == [
        "https://hooks.example.com/hook"
    ]


def test_does_not_resolve_and_not_public_get_one_message(configure: Any) -> None:
    answers = [
        configure(f"https://{host}/hook").get_json()
        for host in ("inside.example.com", "nowhere.example.com")
    ]
    assert {a["error"] for a in answers} == {"url host must resolve to public addresses only"}


def test_a_non_ascii_url_is_stored_and_answered_in_ascii(
    configure: Any, webhooks_db: firestore.Client
) -> None:
    response = configure("https://hööks.example.com/ä?q=ü")
    assert response.status_code == 200, response.get_json()
    url = "https://xn--hks-snaa.example.com/%C3%A4?q=%C3%BC"
    assert response.get_json()["webhook"]["url"] == url
    assert [d["url"] for d in endpoint_docs(webhooks_db).values()] == [url]
