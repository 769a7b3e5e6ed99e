"""Only a v* tag's production run may deploy; actions are pinned; every gcloud call is real."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gcloud_tree import problems
from tests.project import ROOT
from tests.workflows import (
    GCLOUD_STEPS,
    WORKFLOWS,
    deploy_env,
    deployed,
    load,
    run_bash,
    step_named,
    steps,
)

WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
# `owner/repo@<40 hex> # vX.Y.Z`: the SHA GitHub runs, the tag a reader recognizes.
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
# The webhooks API's functions: one identity, one size (webhooks-api.md §1, delivery-contract §6).
WEBHOOKS_API = (
    "webhooks_configure",
    "webhooks_send_test_event",
    "webhooks_list_events",
    "webhooks_list_attempts",
    "webhooks_recover",
    "webhooks_resend",
)
DEPLOY_IF = "github.ref_type == 'tag' && startsWith(github.ref, 'refs/tags/v')"


def uses_lines(path: Path) -> list[str]:
    return [
        line.split("uses:", 1)[1].strip()
        for line in path.read_text().splitlines()
        if line.strip().startswith(("uses:", "- uses:"))
    ]


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_sha_with_its_version(path: Path) -> None:
    lines = uses_lines(path)
    assert lines, path
    for line in lines:
        if line.startswith("./"):
            continue  # a workflow of this repository, pinned by the commit itself
        assert PINNED.match(line), line


def test_the_same_action_is_pinned_to_the_same_sha_everywhere() -> None:
    pins: dict[str, set[str]] = {}
    for path in WORKFLOW_FILES:
        for line in uses_lines(path):
            action, _, rest = line.partition("@")
            pins.setdefault(action, set()).add(rest)
    assert all(len(versions) == 1 for versions in pins.values()), pins


def test_dependabot_keeps_the_locks_and_the_actions_fresh() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    ecosystems = {u["package-ecosystem"]: u["directory"] for u in config["updates"]}
    # npm: firebase-tools in package-lock.json, the deploy's only npm tree.
    assert ecosystems == {"pip": "/", "github-actions": "/", "npm": "/"}


def id_token_jobs(workflow: dict[Any, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: job
        for name, job in workflow["jobs"].items()
        if (job.get("permissions") or {}).get("id-token") == "write"
    }


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_only_the_deploy_job_may_request_an_oidc_token(path: Path) -> None:
    workflow = load(path.name)
    assert workflow["permissions"] == {"contents": "read"}  # nothing wider by default
    assert "pull_request_target" not in workflow["on"]
    expected = {"deploy"} if path.name == "deploy.yml" else set()
    assert set(id_token_jobs(workflow)) == expected


def test_the_deploy_job_runs_only_for_v_tags_in_the_production_environment() -> None:
    workflow = load("deploy.yml")
    deploy = workflow["jobs"]["deploy"]
    assert deploy["environment"] == "production"
    assert deploy["if"] == DEPLOY_IF
    assert workflow["on"]["push"] == {"tags": ["v*"]}
    # Nothing before the tests and the token: a dispatch from a branch stops after the tests.
    assert deploy["needs"] == "test"
    assert "branches" not in workflow["on"]["push"]
    first = [s.get("uses", s.get("name", "")).split("@")[0] for s in deploy["steps"][:6]]
    assert first == [
        "actions/checkout",
        "actions/setup-node",
        "Install firebase-tools from the lockfile",  # before any credentials exist
        "google-github-actions/setup-gcloud",  # so is the SDK
        "Check that alerts reach a person",  # no credentials needed: a deploy stops at once
        "google-github-actions/auth",
    ]
    assert deploy["steps"][0]["with"]["persist-credentials"] is False


@pytest.mark.parametrize("name", GCLOUD_STEPS)
def test_every_gcloud_call_of_the_deploy_uses_commands_and_flags_the_sdk_has(
    tmp_path: Path, name: str
) -> None:
    calls = run_bash(step_named(load("deploy.yml"), name)["run"], deploy_env(tmp_path))
    assert calls
    for call in calls:
        assert not problems(call), (call, problems(call))


def test_the_tree_check_catches_a_made_up_flag_or_command() -> None:
    assert problems(["functions", "deploy", "f", "--gen2", "--ingress=all"])
    assert problems(["functions", "deploy", "f", "--ingress-settings=everyone"])
    assert problems(["functions", "deployy", "f"])
    assert not problems(["functions", "deploy", "f", "--no-allow-unauthenticated", "--quiet"])


def test_public_functions_set_proxy_hops_and_ingress_from_repository_variables(
    tmp_path: Path,
) -> None:
    workflow = load("deploy.yml")
    env = deploy_env(tmp_path)
    assert (env["TRUSTED_PROXY_HOPS"], env["INGRESS_SETTINGS"]) == ("1", "all")
    calls = run_bash(step_named(workflow, "Deploy the progress function")["run"], env)
    calls += run_bash(step_named(workflow, "Deploy the webhooks API functions")["run"], env)
    functions = deployed(calls)
    assert set(functions) == {"get_generation_progress", *WEBHOOKS_API}
    for name, flags in functions.items():
        assert flags["--ingress-settings"] == "all", name
        assert "--allow-unauthenticated" in flags, name
        assert "TRUSTED_PROXY_HOPS=1" in flags["--set-env-vars"].split("|"), name
    for name in WEBHOOKS_API:
        variables = functions[name]["--set-env-vars"].split("|")
        assert "WEBHOOK_DATABASE=webhooks" in variables and "WEBHOOK_SINK=svix" in variables
        assert functions[name]["--entry-point"] == name
        assert functions[name]["--service-account"] == env["WEBHOOKS_SERVICE_ACCOUNT"]
        assert functions[name]["--set-secrets"] == (
            "SVIX_API_TOKEN=svix-api-token:latest,SVIX_TEST_API_TOKEN=svix-test-api-token:latest"
        )
    # A test-only switch that lifts the SSRF rules never reaches a deployed function.
    assert "WEBHOOK_ALLOW_PRIVATE_URLS" not in "\n".join(s.get("run", "") for s in steps(workflow))


def test_each_private_function_admits_only_its_caller(tmp_path: Path) -> None:
    workflow = load("deploy.yml")
    env = deploy_env(tmp_path)
    calls = run_bash(
        step_named(workflow, "Deploy the event function with both Eventarc triggers")["run"], env
    )
    calls += run_bash(step_named(workflow, "Deploy the reaper")["run"], env)
    invokers = {
        call[2]: call[3:]
        for call in calls
        if call[:2] == ["functions", "add-invoker-policy-binding"]
    }
    assert set(invokers) == {
        "on_generation_written",
        "on_generation_job_written",
        "reap_stalled_jobs",
    }
    for name in ("on_generation_written", "on_generation_job_written"):
        assert f"--member=serviceAccount:{env['EVENTS_SERVICE_ACCOUNT']}" in invokers[name]
    assert (
        f"--member=serviceAccount:{env['SCHEDULER_SERVICE_ACCOUNT']}"
        in invokers["reap_stalled_jobs"]
    )
    for name, flags in deployed(calls).items():
        assert flags["--ingress-settings"] == "internal-only", name
        assert "--no-allow-unauthenticated" in flags, name
    # No project-wide grant is made by the workflow.
    assert not [call for call in calls if call[:2] == ["projects", "add-iam-policy-binding"]]
