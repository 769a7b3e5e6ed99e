"""`webhooks events|attempts|recover|resend`: an operator's view of the delivery log, and redrive.

The four calls of delivery-contract.md §4-5 for one key id, through the same
code the functions answer with (their request checks, then the sink's log:
the ``webhooks`` database, or Svix with ``WEBHOOK_SINK=svix``), without an API
key: the operator acts with the project's own credentials.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from diffio_progress.core.errors import ApiError
from diffio_progress.core.events import EVENT_TYPES
from diffio_progress.core.log_requests import (
    DELIVERY_STATUSES,
    parse_event_request,
    parse_list_events,
    parse_recover,
)

from .firestore_connection import CliError, firestore_client, firestore_errors

if TYPE_CHECKING:
    from diffio_progress.functions.config import Settings
    from diffio_progress.functions.webhooks.log_handlers import DeliveryLog

COMMANDS = ("events", "attempts", "recover", "resend")


def add_parsers(sub: Any, add: Callable[..., argparse.ArgumentParser], prog: str) -> None:
    """The four commands, under ``webhooks``."""
    events = add(
        sub,
        "events",
        "List a key's events of the last WEBHOOK_LOG_DAYS, newest first, with their delivery.",
        f"{prog} webhooks events --key-id key_0123 --status failed",
    )
    events.add_argument("--status", choices=DELIVERY_STATUSES, help="only deliveries in it")
    events.add_argument("--event-type", choices=EVENT_TYPES, help="only this type")
    events.add_argument("--generation-id", help="only this generation's events")
    events.add_argument("--since", help="RFC 3339 time: recorded at or after it")
    events.add_argument("--until", help="RFC 3339 time: recorded before it")
    events.add_argument("--limit", type=int, default=50, help="events per page, 1-100 (50)")
    events.add_argument("--cursor", help="the next page: the cursor the previous one printed")
    attempts = add(
        sub,
        "attempts",
        "List every attempt of one event, oldest first.",
        f"{prog} webhooks attempts --key-id key_0123 --event-id evt_...",
    )
    attempts.add_argument("--event-id", required=True)
    recover = add(
        sub,
        "recover",
        "Make a key's failed and skipped deliveries since a time pending again; the relay sends.",
        f"{prog} webhooks recover --key-id key_0123 --since 2025-06-01T00:00:00Z",
    )
    recover.add_argument("--since", required=True, help="RFC 3339 time, within WEBHOOK_LOG_DAYS")
    recover.add_argument("--until", help="RFC 3339 time (default: now)")
    resend = add(
        sub,
        "resend",
        "Send one event again now to the key's endpoint, and say how it went.",
        f"{prog} webhooks resend --key-id key_0123 --event-id evt_...",
    )
    resend.add_argument("--event-id", required=True)
    for command in (events, attempts, recover, resend):
        command.add_argument("--key-id", required=True, help="keyId of the API key")
        command.add_argument("--mode", choices=("live", "test"), default="live")
        command.add_argument("--json", action="store_true", help="print the API's JSON answer")
        command.add_argument(
            "--project", help="Google Cloud project (default GOOGLE_CLOUD_PROJECT)"
        )


def run(args: argparse.Namespace, out: TextIO) -> int:
    """One command: the answer the function would give for ``--key-id``, printed."""
    answer = call(args)
    if args.json:
        out.write(json.dumps(answer, indent=2) + "\n")
        return 0
    out.write(describe(args.webhooks_command, answer, args.key_id, args.mode))
    return 0


def call(args: argparse.Namespace) -> dict[str, Any]:
    from diffio_progress.functions.clock import utcnow
    from diffio_progress.functions.config import Settings

    db = firestore_client(args.project)
    settings = Settings.from_env()
    settings = Settings(**{**vars(settings), "project": db.project})
    if settings.webhook_sink == "off":  # an operator's default: the webhooks database
        settings = Settings(**{**vars(settings), "webhook_sink": "direct"})
    log = _log(settings)
    now = utcnow()
    command, key, mode = args.webhooks_command, args.key_id, args.mode
    try:
        with firestore_errors(db.project):
            if command == "events":
                fields = {
                    "mode": mode,
                    "status": args.status,
                    "eventType": args.event_type,
                    "generationId": args.generation_id,
                    "since": args.since,
                    "until": args.until,
                    "limit": args.limit,
                    "cursor": args.cursor,
                }
                request = parse_list_events({k: v for k, v in fields.items() if v is not None})
                return log.list_events(request, key, now)
            if command == "recover":
                body = {"mode": mode, "since": args.since}
                body.update({"until": args.until} if args.until else {})
                return log.recover(parse_recover(body, now, settings.webhook_log_days), key, now)
            event = parse_event_request({"eventId": args.event_id, "mode": mode})
            if command == "attempts":
                return log.list_attempts(event, key, now)
            return log.resend(event, key, now)
    except ApiError as error:
        raise CliError(f"{error.message} ({error.code}).") from None
    finally:
        log.close()


def _log(settings: Settings) -> DeliveryLog:
    from diffio_progress.functions.events.pinned_post import PinnedPoster
    from diffio_progress.functions.webhooks.wiring import build_log, build_sink

    poster = PinnedPoster(allow_private=settings.webhook_allow_private_urls)
    log = build_log(settings, build_sink(settings, poster))
    assert log is not None  # the sink is never off here
    return log


def describe(command: str, answer: dict[str, Any], key_id: str, mode: str) -> str:
    """The answer as lines for a terminal."""
    if command == "events":
        lines = [_event_line(e) for e in answer["events"]] or [f"No events of {key_id} ({mode})."]
        endpoint = answer["endpoint"]
        if endpoint is None:
            lines.append(f"No {mode} endpoint: events are recorded, not pushed (pull them here).")
        elif endpoint["disabled"]:
            lines.append(
                f"Endpoint {endpoint['endpointId']} is DISABLED ({endpoint['disabledReason']}): "
                "configure enables it, then `recover` sends what was skipped."
            )
        if answer["nextCursor"]:
            # With "=": a cursor may begin with "-", which argparse would take for an option.
            lines.append(f"More: --cursor={answer['nextCursor']}")
        return "\n".join(lines) + "\n"
    if command == "attempts":
        rows = [
            f"{a['at']}  {a['trigger']:<8} {a['status']:<9} HTTP {a['httpStatus'] or '-'}  "
            f"{a['durationMs'] or 0} ms  {a['endpointId']}  {a['error'] or ''}".rstrip()
            for a in answer["attempts"]
        ]
        return "\n".join(rows or [f"No attempts of {answer['eventId']} yet."]) + "\n"
    if command == "recover":
        return (
            f"Recovered {answer['recovered']} delivery(ies) of {key_id} ({mode}): pending again, "
            "due now; the relay sends them in order.\n"
        )
    delivery = answer.get("delivery")
    if delivery is None:
        return f"Resent {answer['eventId']} through Svix ({answer['svixMessageId']}).\n"
    how = f"HTTP {delivery['httpStatus']}" if delivery["httpStatus"] else delivery["error"]
    return f"Resent {answer['eventId']}: {delivery['status']} ({how}).\n"


def _event_line(event: dict[str, Any]) -> str:
    delivery = event["delivery"]
    last = delivery["lastHttpStatus"]
    detail = f"{delivery['attempts']} attempt(s)" + (f", last HTTP {last}" if last else "")
    test = " (test)" if event.get("test") else ""
    return (
        f"{event['createdAt']}  {event['eventId']}  {event['eventType']:<21} "
        f"{event['generationId'] or '-'}  {delivery['status']} ({detail}){test}"
    )
