"""monitoring/apply.sh, as the deploy runs it: the first run creates everything, any later run
updates the same resources in place, and every gcloud call is one the installed SDK knows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.cloud import monitoring_dashboard_v1
from google.cloud.logging_v2.types import LogMetric

from tests import gcloud_tree
from tests.monitoring import resources as r
from tests.monitoring.fake_monitoring import TOKEN, FakeMonitoring, install_gcloud
from tests.workflows import load, steps

APPLY = r.MONITORING / "apply.sh"
CHANNELS = "projects/my-project/notificationChannels/1,projects/my-project/notificationChannels/2"


@dataclass
class World:
    api: FakeMonitoring
    tmp: Path

    @property
    def state(self) -> Path:
        return self.tmp / "gcloud-state"

    def apply(self, token: str = TOKEN, script: Path = APPLY) -> subprocess.CompletedProcess[str]:
        """apply.sh as a workflow step runs it: bash with errexit and pipefail."""
        (self.tmp / "gcloud-calls").unlink(missing_ok=True)
        env = {
            "PATH": f"{self.tmp / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.tmp),
            "PROJECT_ID": r.PROJECT,
            "NOTIFICATION_CHANNELS": CHANNELS,
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "diffio/diffio-progress",
            "GITHUB_SHA": "0123abc",
            "MONITORING_API": self.api.url,
            "GCLOUD_LOG": str(self.tmp / "gcloud-calls"),
            "GCLOUD_STATE": str(self.state),
            "GCLOUD_TOKEN": token,
        }
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def gcloud_calls(self) -> list[dict[str, Any]]:
        lines = (self.tmp / "gcloud-calls").read_text().splitlines()
        return [json.loads(line) for line in lines]


def new_world(tmp: Path) -> World:
    install_gcloud(tmp / "bin")
    (tmp / "gcloud-state").mkdir()
    return World(FakeMonitoring(), tmp)


@dataclass
class Run:
    """What one run of apply.sh did: gcloud's calls, the API's calls, the API's resources."""

    result: subprocess.CompletedProcess[str]
    gcloud: list[dict[str, Any]]
    api_calls: list[tuple[str, str]]
    resources: dict[str, dict[str, Any]]
    masks: list[str | None]

    def verbs(self, *group: str) -> list[str]:
        """The write verbs of gcloud's calls of ``group`` (``logging metrics``...)."""
        n = len(group)
        return [
            c["args"][n]
            for c in self.gcloud
            if c["args"][:n] == list(group) and c["args"][n] in {"create", "update"}
        ]

    def of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        return {n: v for n, v in self.resources.items() if n.split("/")[-2] == kind}


def edited_copy(tmp: Path) -> Path:
    """A copy of monitoring/ whose alerts have new titles and whose SLOs have a new goal."""
    copy = tmp / "monitoring"
    shutil.copytree(r.MONITORING, copy)
    for folder, field, value in (
        ("alert-policies", "displayName", "renamed"),
        ("slos", "goal", 0.5),
    ):
        for path in (copy / folder).glob("*.json"):
            data = json.loads(path.read_text())
            data[field] = value if field == "goal" else f"{data[field]} ({value})"
            path.write_text(json.dumps(data))
    return copy / "apply.sh"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Run]]:
    """A first deploy's run of apply.sh, a second one on what the first left, and a third
    after the files changed."""
    tmp = tmp_path_factory.mktemp("apply")
    world = new_world(tmp)
    done = []
    for script in (APPLY, APPLY, edited_copy(tmp)):
        world.api.calls.clear()
        world.api.masks.clear()
        result = world.apply(script=script)
        assert result.returncode == 0, result.stderr
        done.append(
            Run(
                result,
                world.gcloud_calls(),
                list(world.api.calls),
                json.loads(json.dumps(world.api.resources)),
                list(world.api.masks),
            )
        )
    world.api.stop()
    yield done


def test_the_first_run_creates_everything_and_a_second_updates_it_in_place(
    runs: list[Run],
) -> None:
    first, second, _ = runs
    metrics, policies = len(r.files("log-metrics", ".yaml")), len(r.files("alert-policies"))
    assert first.verbs("logging", "metrics") == ["create"] * metrics
    assert first.verbs("monitoring", "dashboards") == ["create"]
    assert len(first.of_kind("services")) == len(r.files("services"))
    assert len(first.of_kind("serviceLevelObjectives")) == len(r.files("slos"))
    assert len(first.of_kind("alertPolicies")) == policies
    assert {m for m, _ in first.api_calls if m != "GET"} == {"POST"}

    assert second.verbs("logging", "metrics") == ["update"] * metrics
    assert second.verbs("monitoring", "dashboards") == ["update"]
    assert second.resources == first.resources  # nothing new, nothing lost, the same content
    writes = [method for method, _ in second.api_calls if method != "GET"]
    assert writes == ["PATCH"] * len(first.resources)
    # Services and SLOs are patched with a mask naming every field the file sets.
    assert [m for m in second.masks if m] == [
        ",".join(k for k in r.rendered_json(p) if k != "name")
        for p in [*r.files("services"), *r.files("slos")]
    ]
    labels = {p["userLabels"]["policy"] for p in second.of_kind("alertPolicies").values()}
    assert labels == {p.stem for p in r.files("alert-policies")}


def test_changed_files_update_the_same_resources_even_a_renamed_alert(runs: list[Run]) -> None:
    first, _, edited = runs
    assert edited.resources.keys() == first.resources.keys()
    titles = [p["displayName"] for p in edited.of_kind("alertPolicies").values()]
    assert titles and all(t.endswith("(renamed)") for t in titles)
    assert {s["goal"] for s in edited.of_kind("serviceLevelObjectives").values()} == {0.5}


def test_what_is_applied_is_rendered_for_the_project_and_parses_strictly(
    runs: list[Run],
) -> None:
    for run in runs[:2]:
        applied = [json.dumps(v) for v in run.resources.values()]
        applied += [c["config"] for c in run.gcloud if c["config"]]
        assert applied and not any(p in text for p in r.PLACEHOLDERS for text in applied)
        for call in run.gcloud:
            if call["args"][:2] == ["logging", "metrics"] and call["config"]:
                LogMetric.from_json(json.dumps(yaml.safe_load(call["config"])))
            if call["args"][:2] == ["monitoring", "dashboards"] and call["config"]:
                monitoring_dashboard_v1.Dashboard.from_json(call["config"])
        for policy in run.of_kind("alertPolicies").values():
            assert policy["notificationChannels"] == CHANNELS.split(",")
            assert r.RUNBOOK_URL + "#" in policy["documentation"]["content"]


@pytest.mark.parametrize("failing", ["token", "alertPolicies"])
def test_an_api_error_fails_the_step_and_says_what_failed(tmp_path: Path, failing: str) -> None:
    world = new_world(tmp_path)
    world.api.failing.add(failing)
    try:
        result = world.apply(token="not-the-token" if failing == "token" else TOKEN)
    finally:
        world.api.stop()
    assert result.returncode != 0
    if failing == "token":
        assert "HTTP 401" in result.stderr and not world.api.resources
    else:
        assert "POST projects/my-project/alertPolicies failed" in result.stderr
        assert "backend error" in result.stderr  # what the API said
        assert not world.api.of_kind("alertPolicies")
        assert "applied alert policy" not in result.stdout


def test_every_gcloud_call_is_a_command_with_flags_the_installed_sdk_knows(
    runs: list[Run],
) -> None:
    calls = [c for run in runs for c in run.gcloud]
    assert {tuple(c["args"][:3]) for c in calls} >= {
        ("logging", "metrics", "describe"),
        ("logging", "metrics", "create"),
        ("logging", "metrics", "update"),
        ("monitoring", "dashboards", "create"),
        ("monitoring", "dashboards", "update"),
    }
    for call in calls:
        assert gcloud_tree.problems(call["args"]) == [], call["args"]
    assert gcloud_tree.problems(["logging", "metrics", "create", "m", "--config-file=x"])


def test_the_deploy_applies_monitoring_as_its_last_step() -> None:
    workflow = load("deploy.yml")
    last = workflow["jobs"]["deploy"]["steps"][-1]
    assert last["run"].strip() == "monitoring/apply.sh"
    assert "PROJECT_ID" in workflow["jobs"]["deploy"]["env"]
    assert last["env"]["NOTIFICATION_CHANNELS"].startswith("${{ vars.")
    assert os.access(APPLY, os.X_OK)  # the step runs it directly
    assert [s for s in steps(workflow) if "monitoring/apply.sh" in s.get("run", "")] == [last]
