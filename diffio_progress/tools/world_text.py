"""What `run` prints once the world is ready: the key (once), the demo, and commands to paste."""

from __future__ import annotations

import json
import os
import shlex
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from diffio_progress.core.events import EVENT_TYPES

from . import world_reaper
from .demo import AUDIO_PROJECT, DEMO_USER, Demo
from .event_world import EventWorld
from .watch import DEFAULT_URL


def python_command() -> str:
    """How the user should call this Python: the venv's path when run from the clone."""
    executable = Path(sys.executable)
    if executable.is_relative_to(Path.cwd()):
        return shlex.quote(os.path.relpath(executable))
    return "python"


def sdk_snippet(base_url: str, receiver_url: str) -> str:
    """What a client runs: configure its live endpoint (the receiver's, so it keeps its secret
    and verifies), then send it a test event, which the receiver shows here."""
    types = ", ".join(f'"{t}"' for t in EVENT_TYPES)
    return f"""  {python_command()} - <<'EOF'
  import os; from diffio import DiffioClient
  client = DiffioClient(apiKey=os.environ["DIFFIO_API_KEY"], baseUrl="{base_url}")
  client.webhooks.configure(mode="live", url="{receiver_url}",
      eventTypes=[{types}])
  print(client.webhooks.send_test_event(eventType="generation.completed", mode="live").eventId)
  EOF"""


def log_text(base_url: str, env: str, key_id: str, now: datetime) -> str:
    """How to read the demo key's delivery log and get back what it missed (delivery-contract
    §4-5): the API with the key, and the operator's commands without it."""
    python = python_command()
    since = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    post = f'curl -X POST "{base_url}/webhooks/{{}}" -H "Authorization: Bearer $DIFFIO_API_KEY" '
    post += '-H "Content-Type: application/json" -d {}'
    listed = post.format("list_events", shlex.quote(json.dumps({"limit": 5})))
    recover = post.format("recover", shlex.quote(json.dumps({"mode": "live", "since": since})))
    operator = f"{env} {python} -m diffio_progress webhooks"
    return f"""
The delivery log: what was sent to keyId {key_id}, every attempt, and getting back what it
missed (failed or skipped deliveries become pending; the relay sends them in order):
  {listed}
  {recover}
The same as an operator, without the key:
  {operator} events --key-id {key_id}
  {operator} recover --key-id {key_id} --since {since}
"""


def ready_text(
    demo: Demo,
    url: str,
    host_port: str,
    project: str,
    elapsed: float,
    events: EventWorld,
    reaper: world_reaper.WorldReaper,
) -> str:
    """Ready in …, the key shown once, the demo generations and what to paste next."""
    python = python_command()
    base_url = url.rsplit("/", 1)[0]
    sdk = sdk_snippet(base_url, events.receiver.url)
    body = json.dumps({"generationId": demo.live_generation, "apiProjectId": demo.live_project})
    rows = "\n".join(
        f"  {project_id:<11} {generation:<21} {state}"
        for project_id, generation, state in demo.generations
    )
    env = f"FIRESTORE_EMULATOR_HOST={host_port} GOOGLE_CLOUD_PROJECT={project}"
    env += f" CLOUD_RUN_EMULATOR_HOST={reaper.standin}"
    simulate_cmd = f"{env} {python} -m diffio_progress simulate"
    watch = f"{python} -m diffio_progress watch {demo.live_generation}"
    watch += f" --project-id {demo.live_project}"
    if url != DEFAULT_URL:
        watch += f" --url {url}"
    curl = (
        f'curl -X POST "{url}" -H "Authorization: Bearer $DIFFIO_API_KEY" '
        f'-H "Content-Type: application/json" -d {shlex.quote(body)}'
    )
    return f"""
Ready in {elapsed:.1f} s. Ctrl-C stops everything.

API key for user {DEMO_USER} (keyId {demo.key_id}); shown once, stored only as its SHA-256:
  export DIFFIO_API_KEY={demo.key}

Demo generations (project, generation, state):
{rows}
The simulator is moving {demo.live_generation} from pending to complete now (about 35 s).
Status-change events: a bridge posts every generation and job change to the event function
on {events.url}, which sends keyId {demo.key_id}'s events to the receiver on
{events.receiver.url}; each one is verified with the SDK and shown here.

The webhooks API is on {base_url}/webhooks/configure and .../send_test_event; the
receiver above was configured through it with the demo key. With the official SDK:
{sdk}

In another terminal, after the export line above:
  {curl}
  {watch}

Another live generation, a failing one, or a new key, against this emulator:
  {simulate_cmd} --project-id {demo.live_project} --api-key-id {demo.key_id}
  {simulate_cmd} --project-id {AUDIO_PROJECT} --fail-stage inference --api-key-id {demo.key_id}
  {env} {python} -m diffio_progress create-key --user-id {DEMO_USER}
{log_text(base_url, env, demo.key_id, datetime.now(UTC))}\
{world_reaper.instructions(reaper, simulate_cmd, demo.live_project, demo.key_id)}"""
