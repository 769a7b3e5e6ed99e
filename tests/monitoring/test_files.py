"""monitoring/ parses strictly into the API types, and names only what exists: built-in Cloud
Run metrics, log metrics and SLOs defined beside it, services the deploy creates, runbook
sections."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from google.cloud import monitoring_dashboard_v1, monitoring_v3
from google.cloud.logging_v2.types import LogMetric
from google.protobuf.json_format import ParseError

from diffio_progress.tools.cli_parser import build_parser
from tests import gcloud_tree
from tests.monitoring import resources as r
from tests.monitoring.log_filter import Unsupported, entries, matches, service_name
from tests.test_docs import anchors
from tests.workflows import commands, load

# Built-in metrics of Cloud Run (a gen2 function is a Cloud Run service) that monitoring/ may
# name, each with its metric labels. From Google Cloud's metrics list, section "run":
# https://cloud.google.com/monitoring/api/metrics_gcp#gcp-run (read 2026-11-30).
BUILT_IN: dict[str, set[str]] = {
    "run.googleapis.com/request_count": {"response_code", "response_code_class", "route"},
    "run.googleapis.com/request_latencies": {"response_code", "response_code_class", "route"},
    "run.googleapis.com/container/instance_count": {"state"},
    "run.googleapis.com/container/billable_instance_time": set(),
    "run.googleapis.com/container/cpu/utilizations": set(),
    "run.googleapis.com/container/memory/utilizations": set(),
    "run.googleapis.com/container/startup_latencies": set(),
    "run.googleapis.com/container/max_request_concurrencies": {"state"},
    # Section "pubsub": an Eventarc trigger's transport subscription.
    "pubsub.googleapis.com/subscription/oldest_unacked_message_age": set(),
    "pubsub.googleapis.com/subscription/num_undelivered_messages": set(),
    # Section "monitoring": uptime checks.
    "monitoring.googleapis.com/uptime_check/check_passed": {
        "check_id",
        "checker_location",
        "checked_resource_id",
    },
}
RESOURCE = {
    "pubsub": "pubsub_subscription",
    "monitoring": "uptime_url",
    "run": "cloud_run_revision",
}
TYPES: dict[str, Any] = {
    "services": monitoring_v3.Service,
    "slos": monitoring_v3.ServiceLevelObjective,
    "alert-policies": monitoring_v3.AlertPolicy,
    "dashboards": monitoring_dashboard_v1.Dashboard,
    "uptime-checks": monitoring_v3.UptimeCheckConfig,
    "log-metrics": LogMetric,
}


def everything() -> dict[str, str]:
    """Every file of monitoring/ (apply.sh aside), rendered, by its path within the folder."""
    return {
        f"{folder}/{path.name}": r.render(path.read_text())
        for folder in TYPES
        for path in r.files(folder)
    }


def deployed_services() -> set[str]:
    """The Cloud Run services the deploy workflow creates (one per deployed function)."""
    run = commands(load("deploy.yml"))
    names = re.findall(r"gcloud functions deploy (\w+)", run)
    names += re.findall(r"^\s*deploy_trigger (\w+) ", run, re.MULTILINE)
    # A loop's list may go on over lines ("\" at their ends).
    for loop in re.findall(r"^\s*for function in ((?:[\w ]|\\\n)+); do", run, re.MULTILINE):
        names += loop.replace("\\\n", " ").split()
    return {service_name(n) for n in names}


@pytest.mark.parametrize("folder", list(TYPES))
def test_every_json_file_parses_strictly_into_its_api_type(folder: str) -> None:
    for path in r.files(folder):
        TYPES[folder].from_json(r.render(path.read_text()), ignore_unknown_fields=False)


def test_log_metrics_are_named_by_their_file_as_gcloud_is_given_it() -> None:
    for name, metric in r.log_metrics().items():
        assert "name" not in metric, name


def test_the_strict_parse_refuses_a_misspelt_field_or_enum() -> None:
    policy = r.rendered_json(r.files("alert-policies")[0])
    for broken in ({**policy, "documentaton": {}}, {**policy, "combiner": "BOTH"}):
        with pytest.raises(ParseError):
            monitoring_v3.AlertPolicy.from_json(json.dumps(broken), ignore_unknown_fields=False)


def test_only_the_placeholders_apply_sh_fills_in_are_used() -> None:
    for path in r.MONITORING.glob("*/*"):
        used = set(re.findall(r"\$\{\w+\}", path.read_text()))
        assert used <= set(r.PLACEHOLDERS), path


def test_names_are_file_names_and_slos_belong_to_a_defined_service() -> None:
    services = {p.stem for p in r.files("services")}
    for path in r.files("services"):
        assert r.rendered_json(path)["name"] == f"projects/{r.PROJECT}/services/{path.stem}"
    for path in r.files("slos"):
        name = r.rendered_json(path)["name"]
        match = re.fullmatch(
            rf"projects/{r.PROJECT}/services/([^/]+)/serviceLevelObjectives/(.+)", name
        )
        assert match and match.group(2) == path.stem and match.group(1) in services, name
    for path in r.files("dashboards"):
        assert r.rendered_json(path)["name"] == f"projects/{r.PROJECT}/dashboards/{path.stem}"


def test_every_condition_names_a_defined_slo_or_an_existing_metric() -> None:
    slos = {r.rendered_json(p)["name"] for p in r.files("slos")}
    users = {r.USER_METRIC + name for name in r.log_metrics()}
    for policy, condition in r.conditions():
        text = r.condition_filter(condition)
        named = re.findall(r'select_slo_burn_rate\("([^"]+)", "\d+s"\)', text)
        types = r.metric_types(text)
        assert len(named) + len(types) == 1, (policy, text)
        assert set(named) <= slos, (policy, named)
        assert set(types) <= set(BUILT_IN) | users, (policy, types)


def test_every_metric_and_label_named_anywhere_exists() -> None:
    metrics = r.log_metrics()
    for path, text in r.filters():
        labels = set(re.findall(r'metric\.labels?\."?(\w+)"?', text))
        for metric in r.metric_types(text):
            if metric.startswith(r.USER_METRIC):
                defined = metrics[metric.removeprefix(r.USER_METRIC)]
                assert labels <= set(defined.get("labelExtractors", {})), (path, labels)
            else:
                assert metric in BUILT_IN and labels <= BUILT_IN[metric], (path, metric, labels)
                resource = RESOURCE[metric.split(".")[0]]
                assert f'resource.type="{resource}"' in text, (path, text)


TIERS = {  # the SRE workbook's: windows, burn rate, severity
    "fast-burn": ({3600, 300}, 14.4, "CRITICAL"),
    "slow-burn": ({21600, 1800}, 6, "ERROR"),
    "steady-burn": ({259200, 21600}, 1, "WARNING"),
}


def test_each_slo_has_the_workbooks_three_multiwindow_burn_rate_alerts() -> None:
    for path in r.files("slos"):
        name = r.rendered_json(path)["name"]
        tiers = {}
        for policy_path in r.files("alert-policies"):
            policy = r.rendered_json(policy_path)
            found = re.findall(rf'select_slo_burn_rate\("{name}", "(\d+)s"\)', str(policy))
            if found:
                rates = {c["conditionThreshold"]["thresholdValue"] for c in policy["conditions"]}
                windows = set(map(int, found))
                tier = policy_path.stem.removeprefix(f"{path.stem}-")
                tiers[tier] = (windows, *rates, policy["severity"])
                assert policy["combiner"] == "AND", policy_path
        assert tiers == TIERS, (path, tiers)


def test_every_slo_shows_its_remaining_budget_on_the_dashboard() -> None:
    slos = {r.rendered_json(p)["name"] for p in r.files("slos")}
    shown = {
        slo
        for _, text in r.filters()
        for slo in re.findall(r'select_slo_budget_fraction\("([^"]+)"\)', text)
    }
    assert shown == slos


def test_filters_select_services_the_deploy_creates() -> None:
    deployed = deployed_services()
    assert {"get-generation-progress", "reap-stalled-jobs", "webhooks-configure"} <= deployed
    known = deployed
    selecting = 0
    for path, text in r.filters():
        for name in re.findall(r'service_name"?\s*=\s*"([\w-]+)"', text):
            assert name in known, (path, name)
            selecting += 1
        for choices in re.findall(r'full_match\("([\w|-]+)"\)', text):
            assert set(choices.split("|")) <= known, (path, choices)
            selecting += 1
    assert selecting >= 10
    for_events = r.metrics_for("on_generation_written")
    assert for_events and for_events == r.metrics_for("on_generation_job_written")


def test_the_dashboards_golden_signals_cover_every_function() -> None:
    board = r.rendered_json(r.files("dashboards")[0])
    signals = {
        re.sub(r", per function$|\s*\(.*", "", w["title"]): w
        for w in board["gridLayout"]["widgets"]
        if w["title"].endswith("per function") or ", per function" in w["title"]
    }
    for metric in (
        "request_count",
        "request_latencies",
        "instance_count",
        "cpu/utilizations",
        "memory/utilizations",
        "startup_latencies",
    ):
        assert any(metric in json.dumps(w) for w in signals.values()), metric
    for title, widget in signals.items():
        [choices] = re.findall(r'full_match\(\\?"([\w|-]+)', json.dumps(widget))
        assert set(choices.split("|")) == deployed_services(), title


def test_each_log_metric_is_for_a_function_whose_served_lines_a_test_checks() -> None:
    # tests/functions/{events,reaper}/test_monitoring_fields.py serve these two.
    checked = r.metrics_for("on_generation_written") | r.metrics_for("reap_stalled_jobs")
    assert set(checked) == set(r.log_metrics())
    for path, text in everything().items():
        if not path.startswith("log-metrics/"):
            assert "jsonPayload" not in text, path  # only log metrics read log fields


def test_every_alert_documents_itself_and_links_its_runbook_section(tmp_path: Path) -> None:
    runbook = r.MONITORING.parent / "docs" / "runbook.md"
    sections = anchors(runbook)
    for path in r.files("alert-policies"):
        policy = r.rendered_json(path)
        documentation = policy["documentation"]
        assert len(documentation["content"]) > 200, path
        links = set(re.findall(re.escape(r.RUNBOOK_URL) + r"#([\w-]+)", json.dumps(documentation)))
        # The runbook names the alert: the linked section's heading is the policy's title.
        title = policy["displayName"].removeprefix("diffio-progress: ")
        (tmp_path / "heading.md").write_text(f"## {title}\n")
        assert links == anchors(tmp_path / "heading.md"), (path, links)
        assert links <= sections, (path, links)


def test_every_log_metric_sets_only_what_gcloud_reads_from_a_file() -> None:
    # gcloud reads camelCase fields, top level only: no snake_case key may slip in.
    for name, metric in r.log_metrics().items():
        assert set(metric) <= {
            "description",
            "filter",
            "labelExtractors",
            "metricDescriptor",
            "valueExtractor",
            "bucketOptions",
        }, name


def runbook_row(title: str) -> str:
    text = (r.MONITORING.parent / "docs" / "runbook.md").read_text()
    [row] = [line for line in text.splitlines() if line.startswith(f"| {title} |")]
    return row


def test_the_runbook_states_each_threshold_the_files_set() -> None:
    for path in r.files("slos"):
        slo = r.rendered_json(path)
        row = runbook_row(f"`{path.stem}`")
        assert f"**{slo['goal'] * 100:g}%**" in row, row
        cut = slo["serviceLevelIndicator"]["requestBased"].get("distributionCut")
        if cut:
            assert f"**{cut['range']['max']:g} ms**" in row, row
    for path in r.files("alert-policies"):
        policy = r.rendered_json(path)
        row = runbook_row(policy["displayName"].removeprefix("diffio-progress: "))
        assert policy["severity"] in row, row
        for condition in policy["conditions"]:
            if "conditionThreshold" in condition:
                assert f"> {condition['conditionThreshold']['thresholdValue']:g}" in row, row
            else:
                minutes = int(condition["conditionAbsent"]["duration"].removesuffix("s")) // 60
                assert f"{minutes} minutes" in row, row


def test_the_latency_figures_the_runbook_cites_are_docs_capacity_md_s() -> None:
    capacity = (r.MONITORING.parent / "docs" / "capacity.md").read_text()
    row = runbook_row("`progress-latency`")
    for figure in ("90.8 ms", "124.9", "3-5 ms", "10-30 ms", "`--concurrency=32`"):
        assert figure in row and figure in capacity, figure
    # request_latencies leaves start-ups out (Google's description): the start-up alert's row
    # cites the measured cold start, and the latency row says it is not counted slow.
    assert "0.46 s" in runbook_row("Slow start-ups") and "0.46 s" in capacity
    assert (
        "**not** counted slow" in row
        and "does not include container startup"
        in (r.MONITORING.parent / "docs" / "runbook.md").read_text()
    )


def test_the_filter_judge_reads_entries_as_cloud_logging_makes_them() -> None:
    line = '{"severity": "ERROR", "message": "POST / 503", "httpRequest": {"status": 503}, "n": 2}'
    [entry] = entries([line, "not json"], "reap_stalled_jobs")
    assert matches('resource.labels.service_name="reap-stalled-jobs" severity>=WARNING', entry)
    assert matches("httpRequest.status>=500 jsonPayload.n>=1 jsonPayload.message:*", entry)
    assert not matches("jsonPayload.httpRequest.status:*", entry)  # lifted out of the payload
    assert not matches('jsonPayload.n>=3 severity="ERROR"', entry)
    for unsupported in ('a="b" OR c="d"', 'NOT a="b"', '(a="b")'):
        with pytest.raises(Unsupported):
            matches(unsupported, entry)


def runbook_gcloud_calls() -> list[list[str]]:
    """Every gcloud command of the runbook, in code blocks or inline, as its arguments."""
    text = (r.MONITORING.parent / "docs" / "runbook.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
    prose = re.sub(r"^\|.*$", "", re.sub(r"```.*?```", "", text, flags=re.DOTALL), flags=re.M)
    spans = re.findall(r"`(gcloud [^`]+)`", prose)
    commands = [c for b in blocks for c in b.replace("\\\n", " ").splitlines()] + spans
    return [
        shlex.split(c.replace("\n", " "))[1:] for c in commands if c.strip().startswith("gcloud ")
    ]


def test_every_gcloud_command_of_the_runbook_is_one_the_installed_sdk_knows() -> None:
    calls = runbook_gcloud_calls()
    assert len(calls) >= 10 and ["run", "services", "update-traffic"] in [c[:3] for c in calls]
    for call in calls:
        assert gcloud_tree.problems(call) == [], call


def runbook_cli_calls() -> list[list[str]]:
    """The arguments of every ``python -m diffio_progress`` command the runbook gives."""
    text = (r.MONITORING.parent / "docs" / "runbook.md").read_text().replace("\\\n", " ")
    found = re.findall(r"python -m diffio_progress ([^`\n]+)", text)
    return [shlex.split(c) for c in found]


def parse_cli(args: list[str]) -> None:
    try:
        build_parser().parse_args(args)
    except SystemExit as refused:
        raise AssertionError(f"the CLI refuses {args}") from refused


def test_every_cli_command_of_the_runbook_parses() -> None:
    calls = runbook_cli_calls()
    assert {c[0] for c in calls} >= {"fail-stage", "watch", "webhooks"}
    assert {c[1] for c in calls if c[0] == "webhooks"} >= {"recover", "attempts", "events"}
    for call in calls:
        parse_cli(call)
