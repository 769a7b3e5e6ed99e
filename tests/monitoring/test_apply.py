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
from google.cloud import monitoring_dashboard_v1
from google.cloud.logging_v2.types import LogMetric

from tests import gcloud_tree
from tests.monitoring import resources as r
from tests.monitoring.fake_monitoring import TOKEN, FakeMonitoring, install_gcloud
from tests.workflows import load, steps

APPLY = r.MONITORING / "apply.sh"
PAGE = "projects/my-project/notificationChannels/1,projects/my-project/notificationChannels/2"
TICKET = "projects/my-project/notificationChannels/3"


@dataclass
class World:
    api: FakeMonitoring
    tmp: Path

    @property
    def state(self) -> Path:
        return self.tmp / "gcloud-state"

    def apply(
        self, token: str = TOKEN, script: Path = APPLY, **given: str
    ) -> subprocess.CompletedProcess[str]:
        """apply.sh as a workflow step runs it: bash with errexit and pipefail."""
        (self.tmp / "gcloud-calls").write_text("")
        env = {
            "PATH": f"{self.tmp / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.tmp),
            "PROJECT_ID": r.PROJECT,
            "PAGE_CHANNELS": PAGE,
            "TICKET_CHANNELS": TICKET,
            "RETRY_DELAYS": "0 0 0",  # no waiting in tests; the real default backs off
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "diffio/diffio-progress",
            "GITHUB_SHA": "0123abc",
            "MONITORING_API": self.api.url,
            "GCLOUD_LOG": str(self.tmp / "gcloud-calls"),
            "GCLOUD_STATE": str(self.state),
            "GCLOUD_TOKEN": token,
            **given,
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
    """A copy of monitoring/ whose alerts, dashboard and log metrics have new titles and whose
    SLOs have a new goal."""
    copy = tmp / "monitoring"
    shutil.copytree(r.MONITORING, copy)
    for folder, field, value in (
        ("alert-policies", "displayName", "renamed"),
        ("dashboards", "displayName", "renamed"),
        ("log-metrics", "description", "renamed"),
        ("slos", "goal", 0.5),
    ):
        for path in (copy / folder).glob("*.json"):
            data = json.loads(path.read_text())
            data[field] = value if field == "goal" else f"{data[field]} ({value})"
            path.write_text(json.dumps(data))
    return copy / "apply.sh"


BY_HAND = "projects/my-project/notificationChannels/9"
MORE = "projects/my-project/notificationChannels/4"


def change_by_hand(api: FakeMonitoring) -> None:
    """What an operator does in the console: a channel added, a threshold changed."""
    policies = {p["userLabels"]["policy"]: p for p in api.of_kind("alertPolicies").values()}
    policies["reaper-not-running"]["notificationChannels"].append(BY_HAND)
    policies["events-given-up"]["conditions"][0]["conditionThreshold"]["thresholdValue"] = 9.0


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Run]]:
    """A first deploy's run of apply.sh, a second one on what the first left, a third after
    changes by hand, and a fourth after the files changed and a page channel was added."""
    tmp = tmp_path_factory.mktemp("apply")
    world = new_world(tmp)
    world.api.metric_lag = 2  # each new log metric: 404 twice, then visible
    done = []
    for step in ("first", "second", "by hand", "edited"):
        if step == "by hand":
            change_by_hand(world.api)
        world.api.calls.clear()
        world.api.masks.clear()
        if step == "edited":
            result = world.apply(script=edited_copy(tmp), PAGE_CHANNELS=f"{PAGE},{MORE}")
        else:
            result = world.apply()
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


def test_the_first_run_creates_everything_and_a_second_changes_nothing(runs: list[Run]) -> None:
    first, second, *_ = runs
    metrics, policies = len(r.files("log-metrics")), len(r.files("alert-policies"))
    assert first.verbs("logging", "metrics") == ["create"] * metrics
    assert first.verbs("monitoring", "dashboards") == ["create"]
    assert len(first.of_kind("services")) == len(r.files("services"))
    assert len(first.of_kind("serviceLevelObjectives")) == len(r.files("slos"))
    assert len(first.of_kind("uptimeCheckConfigs")) == len(r.files("uptime-checks"))
    assert len(first.of_kind("alertPolicies")) == policies
    assert {m for m, _ in first.api_calls if m != "GET"} == {"POST"}

    # Nothing written: an absence alert stays armed across deploys.
    assert second.verbs("logging", "metrics") == second.verbs("monitoring", "dashboards") == []
    assert second.resources == first.resources
    assert [m for m, _ in second.api_calls if m != "GET"] == []
    assert second.result.stdout.count("unchanged") == metrics + len(first.resources) + 1
    labels = {p["userLabels"]["policy"] for p in second.of_kind("alertPolicies").values()}
    assert labels == {p.stem for p in r.files("alert-policies")}


def test_an_alert_naming_a_log_metric_just_created_is_retried_until_it_is_found(
    runs: list[Run],
) -> None:
    first = runs[0]
    named = {m for p in first.of_kind("alertPolicies").values() for m in r.metric_types(str(p))}
    user = {m for m in named if m.startswith(r.USER_METRIC)}
    assert len(user) >= 4
    # Each log metric's first two writes answer 404 (metric_lag): both are retried.
    assert first.result.stderr.count("answered 404; again in 0 s") == 2 * len(user)
    assert len(first.of_kind("alertPolicies")) == len(r.files("alert-policies"))


def test_a_log_metric_still_missing_after_the_retries_fails_the_run(tmp_path: Path) -> None:
    world = new_world(tmp_path)
    world.api.metric_lag = 4  # one more than RETRY_DELAYS allows
    try:
        result = world.apply()
    finally:
        world.api.stop()
    assert result.returncode != 0
    assert result.stderr.count("answered 404; again in 0 s") == 3
    assert "alertPolicies failed: HTTP 404" in result.stderr


def test_changed_files_update_the_same_resources_even_a_renamed_alert(runs: list[Run]) -> None:
    first, *_, edited = runs
    assert edited.resources.keys() == first.resources.keys()
    assert edited.verbs("logging", "metrics") == ["update"] * len(r.files("log-metrics"))
    assert edited.verbs("monitoring", "dashboards") == ["update"]
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
                LogMetric.from_json(call["config"], ignore_unknown_fields=False)
            if call["args"][:2] == ["monitoring", "dashboards"] and call["config"]:
                monitoring_dashboard_v1.Dashboard.from_json(call["config"])
        for policy in run.of_kind("alertPolicies").values():
            assert r.RUNBOOK_URL + "#" in policy["documentation"]["content"]


def test_critical_and_error_alerts_page_and_warnings_open_a_ticket(runs: list[Run]) -> None:
    policies = runs[0].of_kind("alertPolicies").values()
    for policy in policies:
        wanted = TICKET if policy["severity"] == "WARNING" else PAGE
        assert policy["notificationChannels"] == wanted.split(","), policy["displayName"]
    assert {p["severity"] for p in policies} == {"CRITICAL", "ERROR", "WARNING"}


def test_a_change_by_hand_is_put_back_but_channels_added_by_hand_stay(runs: list[Run]) -> None:
    second, by_hand, edited = runs[1:]
    named = {p["userLabels"]["policy"]: n for n, p in by_hand.of_kind("alertPolicies").items()}
    # Only the policy whose threshold changed is written, back to its file's threshold.
    assert [c for c in by_hand.api_calls if c[0] != "GET"] == [("PATCH", named["events-given-up"])]
    assert (
        by_hand.resources[named["events-given-up"]]["conditions"]
        == (second.resources[named["events-given-up"]]["conditions"])
    )
    kept = by_hand.resources[named["reaper-not-running"]]["notificationChannels"]
    assert kept == [*PAGE.split(","), BY_HAND]
    # A page channel added to the variable joins them at the next deploy.
    grown = edited.resources[named["reaper-not-running"]]["notificationChannels"]
    assert grown == [*PAGE.split(","), BY_HAND, MORE]


@pytest.mark.parametrize("staging", [None, "true"])
def test_without_a_page_channel_only_a_staging_project_is_applied(
    tmp_path: Path, staging: str | None
) -> None:
    world = new_world(tmp_path)
    given = {"PAGE_CHANNELS": "", **({"MONITORING_STAGING": staging} if staging else {})}
    script = shutil.copytree(r.MONITORING, tmp_path / "monitoring") / "apply.sh"
    for path in (tmp_path / "monitoring" / "alert-policies").glob("*.json"):
        if path.stem not in ("reaper-not-running", "reaper-lookup-errors"):
            path.unlink()  # a page and a ticket are enough here
    try:
        result = world.apply(script=script, **given)
    finally:
        world.api.stop()
    if staging is None:
        assert result.returncode == 1 and "PAGE_CHANNELS is empty" in result.stderr
        assert not world.api.calls and not world.gcloud_calls()  # not even a token asked
        return
    assert result.returncode == 0, result.stderr
    policies = {p["severity"]: p for p in world.api.of_kind("alertPolicies").values()}
    assert "notificationChannels" not in policies["ERROR"]  # a staging page reaches nobody
    assert policies["WARNING"]["notificationChannels"] == [TICKET]


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
        ("logging", "metrics", "list"),
        ("logging", "metrics", "create"),
        ("logging", "metrics", "update"),
        ("monitoring", "dashboards", "create"),
        ("monitoring", "dashboards", "update"),
    }
    for call in calls:
        assert gcloud_tree.problems(call["args"]) == [], call["args"]
    assert gcloud_tree.problems(["logging", "metrics", "create", "m", "--config-file=x"])


def test_the_deploy_checks_the_channels_first_and_applies_monitoring_last() -> None:
    workflow = load("deploy.yml")
    deploy = steps(workflow)
    last = workflow["jobs"]["deploy"]["steps"][-1]
    assert last["run"].strip() == "monitoring/apply.sh"
    assert "PROJECT_ID" in workflow["jobs"]["deploy"]["env"]
    for step in (last, *[s for s in deploy if "apply.sh --check" in s.get("run", "")]):
        assert {k: v.split(" ")[1] for k, v in step["env"].items()} == {
            "PAGE_CHANNELS": "vars.MONITORING_PAGE_CHANNELS",
            "TICKET_CHANNELS": "vars.MONITORING_TICKET_CHANNELS",
            "MONITORING_STAGING": "vars.MONITORING_STAGING",
        }
    assert os.access(APPLY, os.X_OK)  # the step runs it directly
    [check] = [i for i, s in enumerate(deploy) if "monitoring/apply.sh" in s.get("run", "")][:1]
    [auth] = [i for i, s in enumerate(deploy) if s.get("id") == "auth"]
    assert check < auth  # a deploy without a page channel stops before it changes anything
    assert [s for s in deploy if s.get("run", "").strip() == "monitoring/apply.sh"] == [last]
