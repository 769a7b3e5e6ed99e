"""`webhooks listen` (a receiver), `add-endpoint`, `migrate-endpoints`, `encrypt-secrets`;
the log's four commands."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any, TextIO

from diffio_progress.core.events import EVENT_TYPES
from diffio_progress.core.ssrf import UrlRefused, WebhookUrl, is_public_address, parse_webhook_url

from .firestore_connection import CliError, firestore_client, firestore_errors

SECRET_VARIABLE = "DIFFIO_WEBHOOK_SECRET"
LOG_COMMANDS = ("events", "attempts", "recover", "resend")


def add_parser(commands: Any, add: Callable[..., argparse.ArgumentParser], prog: str) -> None:
    webhooks = add(
        commands,
        "webhooks",
        "Status-change events: receive them locally, add an endpoint, list and redrive them.",
        f"{prog} webhooks listen --port 8090",
    )
    sub = webhooks.add_subparsers(dest="webhooks_command", required=True, metavar="<command>")
    listen = add(
        sub,
        "listen",
        "Receive status-change events, verify each with the SDK, print one line per event.",
        f"{SECRET_VARIABLE}=whsec_... {prog} webhooks listen --port 8090",
    )
    listen.add_argument("--port", type=int, required=True, help="port to listen on")
    listen.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    listen.add_argument(
        "--secret", help=f"the endpoint's signing secret (default ${SECRET_VARIABLE})"
    )
    endpoint = add(
        sub,
        "add-endpoint",
        "Create or update an API key's endpoint (configure's own code); print a new secret once.",
        f"{prog} webhooks add-endpoint --key-id key_0123456789abcdef "
        "--url https://example.com/hooks/diffio\n"
        "      --event-types generation.completed,generation.failed",
    )
    endpoint.add_argument(
        "--key-id", required=True, help="keyId of the API key whose events go here"
    )
    endpoint.add_argument("--url", required=True, help="https URL that receives the POSTs")
    endpoint.add_argument(
        "--event-types", help=f"comma-separated, of {', '.join(EVENT_TYPES)} (default: all)"
    )
    migrate = add(
        sub,
        "migrate-endpoints",
        "Move endpoint documents (and their secrets) from (default) to the webhooks database.",
        f"{prog} webhooks migrate-endpoints --project my-project --dry-run",
    )
    migrate.add_argument("--project", help="Google Cloud project (default GOOGLE_CLOUD_PROJECT)")
    migrate.add_argument("--dry-run", action="store_true", help="list what would move; move none")
    encrypt = add(
        sub,
        "encrypt-secrets",
        "Encrypt the plain signing secrets of the webhooks database in place (safe to re-run).",
        f"WEBHOOK_SECRETS_KMS_KEY=projects/P/locations/L/keyRings/R/cryptoKeys/K "
        f"{prog} webhooks encrypt-secrets --project P",
    )
    encrypt.add_argument("--project", help="Google Cloud project (default GOOGLE_CLOUD_PROJECT)")
    endpoint.add_argument(
        "--mode", choices=("live", "test"), default="live", help="which endpoint (live)"
    )
    endpoint.add_argument("--project", help="Google Cloud project (default GOOGLE_CLOUD_PROJECT)")
    from .log_cli import add_parsers

    add_parsers(sub, add, prog)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.webhooks_command == "listen":
        return _listen(args, out)
    if args.webhooks_command == "migrate-endpoints":
        return _migrate(args, out)
    if args.webhooks_command in LOG_COMMANDS:
        from .log_cli import run as run_log

        return run_log(args, out)
    if args.webhooks_command == "encrypt-secrets":
        return _encrypt(args, out)
    return _add_endpoint(args, out, err)


def _migrate(args: argparse.Namespace, out: TextIO) -> int:
    from google.cloud import firestore

    from diffio_progress.functions.config import Settings
    from diffio_progress.functions.webhooks.endpoint_store import new_signing_secret

    from .event_world import secret_box_from_env
    from .migrate_endpoints import migrate_endpoints

    box = secret_box_from_env()
    db = firestore_client(args.project)
    webhooks = firestore.Client(project=db.project, database=Settings.webhook_database)
    with firestore_errors(db.project):
        now = datetime.now(UTC)
        done = migrate_endpoints(db, webhooks, box, new_signing_secret, now, args.dry_run)
    verb = "Would move" if args.dry_run else "Moved"
    out.write(
        f"{verb} {len(done.moved)} endpoint(s) from (default) to the webhooks database of "
        f"{db.project}" + (f": {', '.join(done.moved)}" if done.moved else "") + ".\n"
    )
    if done.already:
        out.write(
            f"Already moved by an earlier run (deleted from (default)): {len(done.already)}.\n"
        )
    return 0


def _encrypt(args: argparse.Namespace, out: TextIO) -> int:
    from google.cloud import firestore

    from diffio_progress.functions.config import Settings

    from .event_world import secret_box_from_env
    from .migrate_endpoints import encrypt_secrets

    box = secret_box_from_env()
    db = firestore_client(args.project)
    webhooks = firestore.Client(project=db.project, database=Settings.webhook_database)
    with firestore_errors(db.project):
        done = encrypt_secrets(webhooks, box)
    out.write(
        f"Encrypted the secrets of {len(done.sealed)} endpoint(s); "
        f"{done.already} had none in plain text.\n"
    )
    if done.changed_meanwhile:
        out.write(f"Changed while this ran, run again: {', '.join(done.changed_meanwhile)}.\n")
    return 0


def _add_endpoint(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .event_world import create_endpoint

    types = [t.strip() for t in (args.event_types or "").split(",") if t.strip()]
    unknown = sorted(set(types) - set(EVENT_TYPES))
    if unknown:
        raise CliError(f"Unknown event types: {', '.join(unknown)}; use {', '.join(EVENT_TYPES)}.")
    try:
        url = parse_webhook_url(args.url, allow_private=True)
    except UrlRefused as refused:
        raise CliError(f"The URL is not usable: {refused}.") from None
    db = firestore_client(args.project)
    with firestore_errors(db.project):
        done = create_endpoint(db, args.key_id, url.text, None, types, args.mode)
    which = ", ".join(types) if types else "all events"
    where = f"Endpoint {done.endpoint_id} ({args.mode}) for keyId {args.key_id} in project "
    where += f"{db.project}, database webhooks: {which}."
    if done.new_secret is None:
        err.write(f"{where} It existed: its URL and event types are updated, its secret kept.\n")
    else:
        # Only the secret goes to stdout, so `SECRET=$(... add-endpoint ...)` captures it.
        out.write(done.new_secret + "\n")
        err.write(f"{where} The secret is shown only this once.\n")
    if _private(url):
        err.write("Note: only delivered where WEBHOOK_ALLOW_PRIVATE_URLS=true (e.g. `run`).\n")
    return 0


def _private(url: WebhookUrl) -> bool:
    """Whether production's rules would refuse this URL (plain http, or a local host)."""
    if url.scheme != "https" or url.host == "localhost":
        return True
    literal = url.host.replace(".", "").replace(":", "").isalnum() and url.host[0].isdigit()
    return literal and not is_public_address(url.host)


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _listen(args: argparse.Namespace, out: TextIO) -> int:
    from .webhook_receiver import WebhookReceiver, describe, describe_repeat

    secret = args.secret or os.environ.get(SECRET_VARIABLE)
    if not secret:
        raise CliError(f"No signing secret: set {SECRET_VARIABLE} or pass --secret.")
    lock = threading.Lock()

    def say(text: str) -> None:
        with lock:
            out.write(text + "\n")
            out.flush()

    def on_event(event: Any, at: datetime) -> None:
        say(f"{at:%H:%M:%S.%f}"[:-3] + f"  {describe(event)}")

    try:
        receiver = WebhookReceiver(
            secret,
            on_event,
            say,
            host=args.host,
            port=args.port,
            on_repeat=lambda event: say(describe_repeat(event)),
        ).start()
    except OSError as error:
        raise CliError(f"Cannot listen on {args.host}:{args.port}: {error.strerror}") from None
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    say(f"Listening on {receiver.url}; Ctrl-C stops.")
    try:
        threading.Event().wait()
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        receiver.stop()
    return 0
