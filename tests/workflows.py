"""Reading the GitHub workflows, and running their steps against a recording stand-in for gcloud."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.project import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"

# A stand-in for gcloud: records each call's arguments (one line, \037-separated); the scheduler
# job exists once created; `describe` and `remove-*` fail unless GCLOUD_EXISTS is set, as on a
# project seen for the first time.
FAKE_GCLOUD = r"""#!/bin/sh
for arg in "$@"; do printf '%s\037' "$arg"; done >> "$GCLOUD_LOG"
printf '\n' >> "$GCLOUD_LOG"
case "$1 $2 $3" in
  "functions describe reap_stalled_jobs") echo "https://reap-stalled-jobs-x7k2p-uc.a.run.app" ;;
  "functions describe relay_pending_deliveries") echo "https://relay-x7k2p-uc.a.run.app" ;;
  "scheduler jobs describe") test -f "$GCLOUD_JOB" ;;
  "scheduler jobs create") touch "$GCLOUD_JOB" ;;
  "projects describe "*) echo 123456789012 ;;
  "auth print-access-token ") echo "ya29.test-token" ;;
  *)
    for arg in "$@"; do
      case "$arg" in describe|remove-iam-policy-binding) test -n "$GCLOUD_EXISTS" ; exit ;; esac
    done ;;
esac
"""


def load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(data, dict)
    # YAML 1.1 reads the bare key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def step_named(workflow: dict[Any, Any], name: str) -> dict[str, Any]:
    [step] = [s for s in steps(workflow) if s.get("name") == name]
    return step


def step_using(workflow: dict[Any, Any], action: str) -> dict[str, Any]:
    found = [s for s in steps(workflow) if s.get("uses", "").split("@")[0] == action]
    assert len(found) == 1, (action, found)
    return found[0]


def commands(workflow: dict[Any, Any]) -> str:
    return "\n".join(s.get("run", "") for s in steps(workflow))


def flags_of(run: str, command: str) -> list[str]:
    """The words of the one command in ``run`` (continuation lines joined) that starts so."""
    found = re.findall(rf"{re.escape(command)}[^\n]*", run.replace("\\\n", " "))
    assert len(found) == 1, (command, run)
    return str(found[0]).split()


def fake_gcloud(tmp_path: Path) -> dict[str, str]:
    """An environment whose gcloud is FAKE_GCLOUD, logging to tmp_path/calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "gcloud").write_text(FAKE_GCLOUD)
    (bin_dir / "gcloud").chmod(0o755)
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "GCLOUD_LOG": str(tmp_path / "calls"),
        "GCLOUD_JOB": str(tmp_path / "job-exists"),
    }


def run_bash(script: str, env: dict[str, str], *args: str) -> list[list[str]]:
    """Runs ``script`` as GitHub runs a step (bash, errexit, pipefail); returns gcloud's calls."""
    log = Path(env["GCLOUD_LOG"])
    log.unlink(missing_ok=True)
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script, "bash", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [line.split("\x1f")[:-1] for line in log.read_text().splitlines()]


def deploy_env(tmp_path: Path, sink: str = "svix") -> dict[str, str]:
    """The job's env as GitHub sets it with the documented defaults, and a recording gcloud."""
    env = {
        key: re.sub(r"\$\{\{ vars\.\w+ \|\| '(.*)' \}\}", r"\1", value)
        for key, value in load("deploy.yml")["jobs"]["deploy"]["env"].items()
    }
    names = ("RUNTIME", "WEBHOOKS", "EVENTS", "REAPER", "SCHEDULER")
    accounts = {f"{n}_SERVICE_ACCOUNT": f"{n.lower()}@p.iam.gserviceaccount.com" for n in names}
    return {
        **env,
        **accounts,
        **fake_gcloud(tmp_path),
        "PROJECT_ID": "p",
        "REGION": "us-central1",
        "FIRESTORE_LOCATION": "nam5",
        "WEBHOOK_SINK": sink,
    }


GCLOUD_STEPS = (
    "Deploy the progress function",
    "Deploy the webhooks API functions",
    "Deploy the event function with both Eventarc triggers",
    "Deploy the reaper",
    "Schedule the reaper every minute",
)


def deployed(calls: list[list[str]]) -> dict[str, dict[str, str]]:
    """Each `functions deploy` call's flags, by function name."""
    return {
        call[2]: dict(word.partition("=")[::2] for word in call[3:] if word.startswith("--"))
        for call in calls
        if call[:2] == ["functions", "deploy"]
    }
