"""The events part of `run`: the event function, the local Eventarc bridge, a verifying receiver.

The demo key configures the receiver as its endpoint through ``webhooks_configure``
(direct sink, private URLs allowed locally), as a client would; the receiver
verifies with the secret that call returned, which stays in this process. Each verified
event is printed as it arrives, beside the simulator's progress.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.cloud import firestore

from diffio_progress.core.events import EVENT_TYPES
from diffio_progress.core.ssrf import parse_webhook_url
from diffio_progress.core.webhook_requests import ConfigureRequest
from diffio_progress.functions.config import (
    WEBHOOK_ALLOW_PRIVATE_URLS,
    WEBHOOK_SECRETS_KMS_KEY,
    WEBHOOK_SECRETS_LOCAL_KEY,
    WEBHOOK_SINK,
    Settings,
)
from diffio_progress.functions.firestore import FirestoreConnection
from diffio_progress.functions.secret_box import SecretBox, build_secret_box
from diffio_progress.functions.webhooks.endpoint_store import (
    Configured,
    EndpointStore,
    new_signing_secret,
)

from . import emulator
from .bridge import Bridge
from .firestore_connection import CliError
from .processes import NotServing, start_function, stop_group, wait_until_serving
from .webhook_receiver import WebhookReceiver, describe, describe_repeat

TARGET = "on_generation_written"
WEBHOOK_DATABASE_DEFAULT = Settings.webhook_database


def secret_box_from_env() -> SecretBox:
    """The box the environment's key names, or ``CliError`` saying which variable to set."""
    box = build_secret_box(Settings.from_env())
    if box is None:
        raise CliError(
            f"No key encrypts signing secrets: set {WEBHOOK_SECRETS_KMS_KEY} "
            f"(or {WEBHOOK_SECRETS_LOCAL_KEY} against the emulator)."
        )
    return box


def create_endpoint(
    db: firestore.Client,
    key_id: str,
    url: str,
    secret: str | None = None,
    event_types: list[str] | None = None,
    mode: str = "live",
    box: SecretBox | None = None,
) -> Configured:
    """The operator's way to the (``key_id``, ``mode``) endpoint: the configure call's own code.

    Writes to the ``webhooks`` database of ``db``'s project. ``secret`` is used if
    the endpoint is new (a fresh one otherwise); an existing endpoint keeps its own.
    It is stored sealed by ``box`` (default: the key the environment names).
    """
    request = ConfigureRequest(
        mode, parse_webhook_url(url, allow_private=True), tuple(event_types or EVENT_TYPES)
    )
    webhooks = firestore.Client(project=db.project, database=WEBHOOK_DATABASE_DEFAULT)
    store = EndpointStore(
        FirestoreConnection(15.0, client_factory=lambda: webhooks), box or secret_box_from_env()
    )
    make = (lambda: secret) if secret is not None else new_signing_secret
    return store.configure(request, key_id, None, datetime.now(UTC), make)


@dataclass
class EventWorld:
    """The running parts; ``url`` is where the bridge posts, ``receiver`` where events land."""

    function: subprocess.Popen[bytes]
    url: str
    log_path: str
    receiver: WebhookReceiver
    secret: str
    bridge: Bridge | None = None

    def wait_until_serving(self, timeout: float = 60) -> None:
        try:
            wait_until_serving(self.function, self.url, timeout)
        except NotServing as failed:
            tail = Path(self.log_path).read_text(errors="replace").strip().splitlines()[-5:]
            raise CliError(f"The event function {failed}:\n" + "\n".join(tail)) from None

    def start_bridge(
        self,
        db: firestore.Client,
        stack: ExitStack,
        say: Callable[[str], None],
        fresh: bool = False,
    ) -> None:
        """Forward the emulator's changes from now on (call before the writes it should forward).

        ``fresh``: the emulator was just started empty, so whatever the listeners find is new
        and is forwarded too; nobody waits for them to be listening.
        """
        self.bridge = Bridge(db, self.url, say).start(existing=fresh)
        stack.callback(self.bridge.stop)

    def add_endpoint(self, db: firestore.Client, key_id: str) -> str:
        """The operator's way (no HTTP call): the demo world uses ``configure`` instead."""
        return create_endpoint(db, key_id, self.receiver.url, self.secret).endpoint_id

    def configure(self, base_url: str, key: str) -> dict[str, Any]:
        """Configure the receiver as the key's live endpoint exactly as a client would (HTTP),
        and have it verify with the secret that call returned; the answer's ``webhook``."""
        body = json.dumps(
            {"mode": "live", "url": self.receiver.url, "eventTypes": list(EVENT_TYPES)}
        ).encode()
        request = urllib.request.Request(
            f"{base_url}/webhooks/configure",
            data=body,
            method="POST",
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            webhook: dict[str, Any] = json.load(response)["webhook"]
        secret = webhook.pop("signingSecret", None)
        if secret:
            self.secret = secret
            self.receiver.use_secret(secret)
        return webhook


def start_event_world(
    stack: ExitStack,
    env: dict[str, str],
    host: str,
    say: Callable[[str], None],
    on_event: Callable[[Any, datetime], None] | None = None,
    on_repeat: Callable[[Any], None] | None = None,
) -> EventWorld:
    """Start the event function and the receiver; every part is stopped by ``stack``."""
    secret = new_signing_secret()

    def printed(event: Any, at: datetime) -> None:
        say(f"  webhook  {describe(event)}")

    def repeated(event: Any) -> None:
        say(f"  webhook  {describe_repeat(event)}")

    receiver = WebhookReceiver(
        secret, on_event or printed, say, host=host, on_repeat=on_repeat or repeated
    ).start()
    stack.callback(receiver.stop)
    log = stack.enter_context(
        tempfile.NamedTemporaryFile("w", prefix="diffio-events-", suffix=".log")
    )
    port = emulator.free_port(host)
    function_env = {**env, WEBHOOK_SINK: "direct", WEBHOOK_ALLOW_PRIVATE_URLS: "true"}
    function = start_function(TARGET, _main_py(), port, env=function_env, stdout=log, host=host)
    stack.callback(stop_group, function)
    return EventWorld(function, f"http://{host}:{port}/", log.name, receiver, secret)


def _main_py() -> Path:
    return Path(__file__).resolve().parents[2] / "main.py"
