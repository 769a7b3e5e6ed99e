"""The events part of `run`: the event function, the local Eventarc bridge, a verifying receiver.

The receiver gets a ``webhookEndpoints`` document for the demo key (direct sink,
private URLs allowed locally); its secret stays in this process. Each verified
event is printed as it arrives, beside the simulator's progress.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.cloud import firestore

from diffio_progress.core.endpoints import ENDPOINTS, SECRET_PREFIX
from diffio_progress.functions.config import WEBHOOK_ALLOW_PRIVATE_URLS, WEBHOOK_SINK

from . import emulator
from .bridge import Bridge
from .firestore_connection import CliError
from .processes import NotServing, start_function, stop_group, wait_until_serving
from .webhook_receiver import WebhookReceiver, describe, describe_repeat

TARGET = "on_generation_written"


def new_signing_secret() -> str:
    """``whsec_`` and 24 random bytes in base64, as Svix makes them."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def create_endpoint(
    db: firestore.Client, key_id: str, url: str, secret: str, event_types: list[str] | None = None
) -> str:
    """A ``webhookEndpoints`` document (events-contract.md §4); returns its id."""
    endpoint_id = "ep_" + secrets.token_hex(8)
    db.document(ENDPOINTS, endpoint_id).set(
        {
            "apiKeyId": key_id,
            "url": url,
            "secret": secret,
            "eventTypes": event_types or [],
            "disabled": False,
            "createdAt": datetime.now(UTC),
        }
    )
    return endpoint_id


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
        return create_endpoint(db, key_id, self.receiver.url, self.secret)


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
