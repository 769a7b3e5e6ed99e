"""The GitHub workflows are valid, test what the README says, and deploy what they should."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.project import ROOT
from tests.workflows import (
    WORKFLOWS,
    commands,
    fake_gcloud,
    flags_of,
    load,
    run_bash,
    step_named,
    step_using,
)


def check_workflows(*paths: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with the GitHub workflow schema it ships (no network needed)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_both_workflows_match_the_github_workflow_schema() -> None:
    result = check_workflows(WORKFLOWS / "test.yml", WORKFLOWS / "deploy.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    # A job without runs-on, and a step that both uses an action and runs a command.
    broken.write_text(
        "on: push\njobs:\n  test:\n    steps:\n      - uses: actions/checkout@v4\n"
        "        run: make test\n"
    )
    result = check_workflows(broken)
    assert result.returncode == 1, result.stdout
    assert "broken.yml" in result.stdout + result.stderr


def test_ci_sets_up_python_java_and_the_emulator_then_runs_the_readme_test_command() -> None:
    workflow = load("test.yml")
    readme = (ROOT / "README.md").read_text()
    test_command = re.search(r"^(make test)\b", readme, re.MULTILINE)
    assert test_command, "the README names its test command"
    assert re.search(rf"^{test_command.group(1)}$", commands(workflow), re.MULTILINE)
    step_using(workflow, "actions/checkout")
    step_using(workflow, "actions/setup-python")
    assert str(step_using(workflow, "actions/setup-java")["with"]["java-version"]) == "17"
    gcloud = step_using(workflow, "google-github-actions/setup-gcloud")
    assert "cloud-firestore-emulator" in gcloud["with"]["install_components"]
    assert {"push", "pull_request", "workflow_call"} <= set(workflow["on"])


def test_deploy_runs_on_dispatch_or_tag_after_the_tests_with_workload_identity() -> None:
    workflow = load("deploy.yml")
    assert "workflow_dispatch" in workflow["on"] and workflow["on"]["push"]["tags"]
    assert workflow["jobs"]["test"]["uses"] == "./.github/workflows/test.yml"
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "test"
    assert deploy["permissions"]["id-token"] == "write"
    auth = step_using(workflow, "google-github-actions/auth")["with"]
    assert auth["workload_identity_provider"].startswith("${{ vars.")
    assert auth["service_account"].startswith("${{ vars.")
    assert "credentials_json" not in auth  # no long-lived key anywhere
    gcloud = step_using(workflow, "google-github-actions/setup-gcloud")
    # A pinned SDK (installed before auth: test_deploy_trust.py checks the order).
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(gcloud["with"]["version"]))


def test_deploy_ships_gen2_and_the_rules_and_indexes() -> None:
    run = commands(load("deploy.yml")).replace("\\\n", " ")
    flags = flags_of(run, "gcloud functions deploy get_generation_progress")
    for flag in (
        "--gen2",
        "--runtime=python312",
        "--trigger-http",
        "--entry-point=get_generation_progress",
        "--source=.",
        "--allow-unauthenticated",
    ):
        assert flag in flags, flag
    assert any(f.startswith("--region=") for f in flags)
    assert '--ingress-settings="$INGRESS_SETTINGS"' in flags
    # The rules and indexes, without firebase-tools (tests/test_firestore_deploy.py runs it).
    rules = step_named(load("deploy.yml"), "Release the Firestore rules and request the indexes")
    assert 'python3 deploy/firestore.py --project="$PROJECT_ID" rules' in rules["run"]
    assert 'python3 deploy/firestore.py --project="$PROJECT_ID" indexes' in rules["run"]
    assert "npx" not in rules["run"] and "firebase-tools" not in rules["run"]


SIZED = {
    "get_generation_progress": (
        "--cpu",
        "--memory",
        "--concurrency",
        "--min-instances",
        "--max-instances",
    ),
    # The event function is deployed once per trigger through a shell function.
    '"$1"': ("--cpu", "--memory", "--concurrency", "--timeout"),
    "reap_stalled_jobs": ("--cpu", "--memory", "--concurrency", "--timeout"),
    "relay_pending_deliveries": ("--cpu", "--memory", "--concurrency", "--timeout"),
}


@pytest.mark.parametrize("function", SIZED)
def test_each_function_is_sized_as_docs_capacity_md_says(function: str) -> None:
    run = commands(load("deploy.yml"))
    flags = flags_of(run, f"gcloud functions deploy {function}")
    sizing = {f.split("=")[0]: f.split("=", 1)[1] for f in flags if "=" in f}
    capacity = (ROOT / "docs" / "capacity.md").read_text()
    for flag in SIZED[function]:
        assert flag in sizing, flag
        assert f"`{flag}={sizing[flag]}`" in capacity, flag  # the choice and its reason agree
    # gunicorn serves as many requests at once as Cloud Run sends: THREADS = concurrency.
    env = sizing["--set-env-vars"]
    assert f"THREADS={sizing['--concurrency']}" in env and "WORKERS=1" in env


# The two Eventarc trigger patterns of events-contract.md §3.
TRIGGER_PATTERNS = (
    "apiProjects/{apiProjectId}/generations/{generationId}",
    "apiProjects/{apiProjectId}/generations/{generationId}/jobs/{stage}",
)


def test_deploy_ships_the_event_function_with_both_eventarc_triggers_and_retries() -> None:
    run = commands(load("deploy.yml")).replace("\\\n", " ")
    body = re.search(r"deploy_trigger\(\) \{(.*?)\n\s*\}", run, re.DOTALL)
    assert body, run
    flags = body.group(1).split()
    assert flags[:4] == ["gcloud", "functions", "deploy", '"$1"']
    for flag in (
        "--gen2",
        "--runtime=python312",
        "--entry-point=on_generation_written",
        "--source=.",
        "--trigger-event-filters=type=google.cloud.firestore.document.v1.written",
        "--trigger-event-filters=database='(default)'",
        '--trigger-event-filters-path-pattern=document="$2"',
        "--retry",
        "--no-allow-unauthenticated",
        '"${secrets[@]}"',
    ):
        assert flag in flags, flag
    for prefix in (
        "--region=",
        "--trigger-location=",
        "--trigger-service-account=",
        "--service-account=",
    ):
        assert any(f.startswith(prefix) for f in flags), prefix
    calls = re.findall(r"^\s*deploy_trigger (\S+) '([^']+)'$", run, re.MULTILINE)
    assert [pattern for _, pattern in calls] == list(TRIGGER_PATTERNS)
    assert len({name for name, _ in calls}) == 2
    # The Svix token comes from Secret Manager, never from the repository.
    assert re.search(r'--set-secrets="SVIX_API_TOKEN=\$\{SVIX_API_TOKEN_SECRET\}:latest"', run)
    assert "SVIX_API_TOKEN=" not in run.replace('--set-secrets="SVIX_API_TOKEN=', "")


def test_the_trigger_patterns_match_what_the_function_accepts_and_not_the_outbox() -> None:
    from diffio_progress.core.events import outbox_path, parse_target

    for pattern in TRIGGER_PATTERNS:
        concrete = re.sub(r"\{(\w+)\}", lambda m: f"x-{m.group(1)}", pattern)
        assert parse_target(concrete) is not None, pattern
    outbox = "/".join(outbox_path("p", "g", "generation.queued"))
    assert not any(re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", p), outbox) for p in TRIGGER_PATTERNS)


def test_deploy_ships_the_reaper_private_under_its_own_identity() -> None:
    workflow = load("deploy.yml")
    run = commands(workflow)
    flags = flags_of(run, "gcloud functions deploy reap_stalled_jobs")
    for flag in (
        "--gen2",
        "--runtime=python312",
        "--trigger-http",
        "--entry-point=reap_stalled_jobs",
        "--source=.",
        "--no-allow-unauthenticated",
        '--service-account="$REAPER_SERVICE_ACCOUNT"',
    ):
        assert flag in flags, flag
    assert "--allow-unauthenticated" not in flags
    invoker = flags_of(run, "gcloud functions add-invoker-policy-binding reap_stalled_jobs")
    assert '--member="serviceAccount:$SCHEDULER_SERVICE_ACCOUNT"' in invoker
    env = workflow["jobs"]["deploy"]["env"]
    assert env["REAPER_SERVICE_ACCOUNT"] == "${{ vars.GCP_REAPER_SERVICE_ACCOUNT }}"
    assert env["SCHEDULER_SERVICE_ACCOUNT"] == "${{ vars.GCP_SCHEDULER_SERVICE_ACCOUNT }}"


def test_the_reaper_schedule_is_created_once_then_updated_every_minute_with_oidc(
    tmp_path: Path,
) -> None:
    step = step_named(load("deploy.yml"), "Schedule the reaper every minute")
    env = {
        **fake_gcloud(tmp_path),
        "PROJECT_ID": "my-project",
        "REGION": "us-central1",
        "SCHEDULER_SERVICE_ACCOUNT": "scheduler@my-project.iam.gserviceaccount.com",
    }
    # A first deploy, then any later one.
    writes = [run_bash(step["run"], env)[-1] for _ in range(2)]
    url = "https://reap-stalled-jobs-x7k2p-uc.a.run.app"
    expected = [
        "http",
        "reap-stalled-jobs",
        "--location=us-central1",
        "--project=my-project",
        "--schedule=* * * * *",
        f"--uri={url}",
        "--http-method=POST",
        "--oidc-service-account-email=scheduler@my-project.iam.gserviceaccount.com",
        f"--oidc-token-audience={url}",
    ]
    assert writes[0][:3] == ["scheduler", "jobs", "create"]
    assert writes[1][:3] == ["scheduler", "jobs", "update"]
    for write in writes:
        assert write[3 : 3 + len(expected)] == expected


def test_deploy_ships_the_relay_private_under_its_own_identity_every_minute(
    tmp_path: Path,
) -> None:
    run = commands(load("deploy.yml"))
    flags = flags_of(run, "gcloud functions deploy relay_pending_deliveries")
    for flag in (
        "--trigger-http",
        "--entry-point=relay_pending_deliveries",
        "--no-allow-unauthenticated",
        '--service-account="$RELAY_SERVICE_ACCOUNT"',
    ):
        assert flag in flags, flag
    invoker = flags_of(run, "gcloud functions add-invoker-policy-binding relay_pending_deliveries")
    assert '--member="serviceAccount:$SCHEDULER_SERVICE_ACCOUNT"' in invoker
    step = step_named(load("deploy.yml"), "Schedule the relay every minute")
    env = {
        **fake_gcloud(tmp_path),
        "PROJECT_ID": "my-project",
        "REGION": "us-central1",
        "SCHEDULER_SERVICE_ACCOUNT": "scheduler@my-project.iam.gserviceaccount.com",
    }
    [*_, write] = run_bash(step["run"], env)
    assert write[:5] == ["scheduler", "jobs", "create", "http", "relay-pending-deliveries"]
    assert "--schedule=* * * * *" in write
    assert "--oidc-service-account-email=scheduler@my-project.iam.gserviceaccount.com" in write
