"""The event tests' world: real writes on the emulator as Eventarc's CloudEvents, and the real
handler built on a Firestore client that counts every RPC."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import flask
from cloudevents.http import from_http
from google.cloud import firestore

from diffio_progress.bench.rpc_count import RpcCounter, client_factory, reads
from diffio_progress.core import paths
from diffio_progress.core.endpoints import ENDPOINTS
from diffio_progress.core.events import outbox_path
from diffio_progress.functions.config import Settings
from diffio_progress.functions.events.handler import EventHandler, Outcome
from diffio_progress.functions.events.pinned_post import PinnedPoster
from diffio_progress.functions.events.wiring import build_event_handler
from diffio_progress.functions.firestore import FirestoreConnection
from diffio_progress.functions.relay.handler import RelayHandler, build_relay_handler
from diffio_progress.tools.cloud_events import written_event
from tests.project import LOCAL_KEY, TEST_PROJECT, WEBHOOK_DATABASE
from tests.seed import MINTED_SECRETS

PROJECT_ID, GENERATION_ID, KEY_ID = "proj-1", "gen-1", "key_events"
Event = tuple[dict[str, str], bytes]


def new_secret() -> str:
    """A signing secret in Svix's form; the session's log scan looks for it."""
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    MINTED_SECRETS.add(secret)
    return secret


@dataclass
class Writes:
    """Real writes on the emulator, each returned as the CloudEvent Eventarc would send."""

    db: firestore.Client
    project_id: str = PROJECT_ID
    generation_id: str = GENERATION_ID

    def _write(self, path: paths.DocPath, fields: dict[str, Any] | None, merge: bool) -> Event:
        ref = self.db.document(*path)
        before = ref.get()
        if fields is None:
            ref.delete()
        else:
            ref.set(fields, merge=merge)
        after = ref.get()
        return written_event(
            TEST_PROJECT,
            "/".join(path),
            before.to_dict() if before.exists else None,
            after.to_dict() if after.exists else None,
        )

    def generation(self, **fields: Any) -> Event:
        """Create (or update) the generation; it carries the test key's apiKeyId unless told."""
        doc = {
            "generationId": self.generation_id,
            "apiProjectId": self.project_id,
            "userId": "user-1",
            "apiKeyId": KEY_ID,
            "modelKey": "diffio-4.6-pro",
            **fields,
        }
        doc = {k: v for k, v in doc.items() if v is not ...}
        return self._write(paths.generation(self.project_id, self.generation_id), doc, True)

    def job(self, stage: str, status: str, progress: float = 0, **fields: Any) -> Event:
        doc = {"status": status, "progress": progress, **fields}
        path = paths.job(self.project_id, self.generation_id, stage)
        return self._write(path, doc, True)

    def delete_job(self, stage: str) -> Event:
        return self._write(paths.job(self.project_id, self.generation_id, stage), None, False)


@dataclass
class Harness:
    """Builds the real handler on a Firestore client that counts every RPC."""

    db: firestore.Client
    webhooks_db: firestore.Client
    counter: RpcCounter
    built: list[EventHandler | RelayHandler] = field(default_factory=list)

    def handler(self, poster: PinnedPoster | None = None, **settings: Any) -> EventHandler:
        connection = FirestoreConnection(5.0, client_factory(self.counter, TEST_PROJECT))
        webhooks = FirestoreConnection(
            5.0,
            client_factory(self.counter, TEST_PROJECT, WEBHOOK_DATABASE),
            database=WEBHOOK_DATABASE,
        )
        settings.setdefault("webhook_secrets_local_key", LOCAL_KEY)
        built = build_event_handler(
            Settings(project=TEST_PROJECT, **settings), connection, poster, webhooks
        )
        self.built.append(built)
        return built

    def send(self, handler: EventHandler, event: Event) -> Outcome:
        return handler(from_http(*event))

    def counted(self, handler: EventHandler, event: Event) -> tuple[Outcome, int]:
        """Handle ``event``; also return the billed document reads it cost."""
        self.counter.reset()
        outcome = self.send(handler, event)
        return outcome, reads(self.counter.snapshot())

    def outbox(
        self, project_id: str = PROJECT_ID, generation_id: str = GENERATION_ID
    ) -> dict[str, dict[str, Any]]:
        # The outbox lives in the webhooks database (docs/delivery-storage.md).
        generation = paths.generation(project_id, generation_id)
        collection = self.webhooks_db.document(*generation).collection("events")
        return {snap.id: snap.to_dict() or {} for snap in collection.get()}

    def event_doc(self, event_type: str) -> dict[str, Any]:
        path = outbox_path(PROJECT_ID, GENERATION_ID, event_type)
        snapshot = self.webhooks_db.document(*path).get()
        assert snapshot.exists, event_type
        return snapshot.to_dict() or {}

    def attempt_errors(self) -> str:
        """Every stored attempt's error, in one text to search."""
        found = (s.to_dict() or {} for s in self.webhooks_db.collection("webhookAttempts").get())
        return " | ".join(str(a.get("error")) for a in found)

    def endpoint(self, url: str, secret: str | None = None, **fields: Any) -> tuple[str, str]:
        """A webhookEndpoints document for the test key; returns (endpoint id, secret)."""
        secret = secret or new_secret()
        endpoint_id = "ep_" + secrets.token_hex(6)
        doc = {"apiKeyId": KEY_ID, "url": url, "secret": secret, **fields}
        # Endpoints and their secrets live in the webhooks database (webhooks-api.md §5).
        self.webhooks_db.document(ENDPOINTS, endpoint_id).set(doc)
        return endpoint_id, secret


@dataclass
class Shifted:
    """The wall clock moved forward by hand: time passes for the relay without a sleep."""

    offset: timedelta = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def relay_handler(
    harness: Harness, clock: Shifted, poster: PinnedPoster | None = None, **settings: Any
) -> RelayHandler:
    """The relay as deployed, on the counted webhooks connection, with a hand-moved clock."""
    settings.setdefault("webhook_sink", "direct")
    settings.setdefault("webhook_allow_private_urls", True)
    poster = poster or PinnedPoster(allow_private=True, deadline_seconds=2.0)
    webhooks = FirestoreConnection(
        5.0,
        client_factory(harness.counter, TEST_PROJECT, WEBHOOK_DATABASE),
        database=WEBHOOK_DATABASE,
    )
    built = build_relay_handler(Settings(project=TEST_PROJECT, **settings), webhooks, poster, clock)
    harness.built.append(built)  # closed with the test: a Svix sink holds pooled connections
    return built


def run_relay(handler: RelayHandler) -> dict[str, int]:
    """One scheduled call: a POST to the relay, its 200 answer's counters."""
    with flask.Flask(__name__).test_request_context("/", method="POST"):
        response = handler(flask.request)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer: dict[str, int] = response.get_json()
    return answer
