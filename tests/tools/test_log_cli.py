"""`webhooks events|attempts|recover|resend`: the operator's log and redrive, on the emulator."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from google.cloud import firestore

from diffio_progress.tools.cli import main
from diffio_progress.tools.event_world import create_endpoint
from tests.functions.events.receivers import Receiver
from tests.functions.webhooks.log_world import ago, seed_attempt, seed_event
from tests.seed import MINTED_SECRETS


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_URLS", "true")
    started = Receiver()
    yield started
    started.stop()


def test_an_operator_lists_recovers_and_resends_a_keys_events(
    db: firestore.Client, webhooks_db: firestore.Client, receiver: Receiver
) -> None:
    failed = seed_event(webhooks_db, "key_ops", "gen-1", status="failed", created=ago(hours=2))
    delivered = seed_event(webhooks_db, "key_ops", "gen-2", created=ago(hours=1))
    seed_attempt(webhooks_db, failed, ago(hours=2), "event", 503)

    code, out, err = run_cli("webhooks", "events", "--key-id", "key_ops")
    assert code == 0, err
    lines = out.splitlines()
    assert delivered["eventId"] in lines[0] and failed["eventId"] in lines[1]
    assert "failed (1 attempt(s), last HTTP 500)" in lines[1]
    assert lines[2].startswith("No live endpoint")
    code, out, _ = run_cli("webhooks", "events", "--key-id", "key_ops", "--limit", "1")
    more = out.splitlines()[-1]
    assert code == 0 and more.startswith("More: --cursor=")  # pasteable even when it is "-..."
    code, out, _ = run_cli("webhooks", "events", "--key-id", "key_ops", "--limit", "1", "--json")
    answer = json.loads(out)
    assert [e["eventId"] for e in answer["events"]] == [delivered["eventId"]]
    assert more == f"More: --cursor={answer['nextCursor']}"
    code, out, _ = run_cli(
        "webhooks", "events", "--key-id", "key_ops", "--limit", "1", more.removeprefix("More: ")
    )
    assert failed["eventId"] in out and "More:" not in out

    code, out, _ = run_cli(
        "webhooks", "attempts", "--key-id", "key_ops", "--event-id", failed["eventId"]
    )
    assert code == 0 and "event    failed    HTTP 503" in out

    since = ago(hours=3).isoformat()
    code, _, err = run_cli("webhooks", "recover", "--key-id", "key_ops", "--since", since)
    assert code == 1 and "webhook_not_configured" in err
    done = create_endpoint(webhooks_db, "key_ops", receiver.url, None, [], "live")
    MINTED_SECRETS.add(done.new_secret or "")
    code, out, err = run_cli("webhooks", "recover", "--key-id", "key_ops", "--since", since)
    assert code == 0, err
    assert out.startswith("Recovered 1 delivery(ies) of key_ops (live)")

    code, out, err = run_cli(
        "webhooks", "resend", "--key-id", "key_ops", "--event-id", failed["eventId"]
    )
    assert code == 0, err
    assert out == f"Resent {failed['eventId']}: delivered (HTTP 204).\n"
    assert receiver.ids == [failed["eventId"]]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["events", "--since", "yesterday"], "invalid_since"),
        (["events", "--limit", "500"], "invalid_limit"),
        (["events", "--cursor", "nope"], "invalid_cursor"),
        (["attempts", "--event-id", "msg_1"], "invalid_event_id"),
        (["resend", "--event-id", "evt_" + "0" * 32], "event_not_found"),
    ],
)
def test_a_bad_argument_is_one_line_with_the_apis_code(
    db: firestore.Client, args: list[str], code: str
) -> None:
    exit_code, out, err = run_cli("webhooks", *args, "--key-id", "key_ops")
    assert (exit_code, out) == (1, "")
    assert f"({code})" in err and len(err.strip().splitlines()) == 1
