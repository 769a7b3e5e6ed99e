"""monitoring/'s files, read and rendered as monitoring/apply.sh renders them for a project."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.monitoring.log_filter import clauses, entries, matches
from tests.project import ROOT

MONITORING = ROOT / "monitoring"
PROJECT = "my-project"
RUNBOOK_URL = "https://github.com/diffio/diffio-progress/blob/0123abc/docs/runbook.md"
PLACEHOLDERS = {"${PROJECT_ID}": PROJECT, "${RUNBOOK_URL}": RUNBOOK_URL}
USER_METRIC = "logging.googleapis.com/user/"


def render(text: str) -> str:
    """The text with its placeholders filled in, as apply.sh's sed does."""
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    return text


def files(folder: str, suffix: str = ".json") -> list[Path]:
    found = sorted((MONITORING / folder).glob(f"*{suffix}"))
    assert found, f"monitoring/{folder} holds no {suffix} file"
    return found


def rendered_json(path: Path) -> dict[str, Any]:
    data = json.loads(render(path.read_text()))
    assert isinstance(data, dict), path
    return data


def log_metrics() -> dict[str, dict[str, Any]]:
    """Each log metric's definition by its name (its file name, as gcloud is given it)."""
    metrics = {}
    for path in files("log-metrics"):
        data = json.loads(render(path.read_text()))
        assert isinstance(data, dict), path
        metrics[path.stem] = data
    return metrics


def metric_fields(metric: dict[str, Any]) -> set[str]:
    """Every ``jsonPayload.<field>`` the metric's filter and extractors read."""
    texts = [metric["filter"], metric.get("valueExtractor", "")]
    texts += list(metric.get("labelExtractors", {}).values())
    return {field for text in texts for field in re.findall(r"jsonPayload\.(\w+)", text)}


def conditions() -> list[tuple[str, dict[str, Any]]]:
    """(policy file name, condition) for every condition of every alert policy."""
    return [
        (path.stem, condition)
        for path in files("alert-policies")
        for condition in rendered_json(path)["conditions"]
    ]


def condition_filter(condition: dict[str, Any]) -> str:
    [kind] = [k for k in condition if k.startswith("condition")]
    return str(condition[kind]["filter"])


def metric_types(text: str) -> list[str]:
    return re.findall(r'metric\.type\s*=\s*"([^"]+)"', text)


def metrics_for(function: str) -> dict[str, dict[str, Any]]:
    """The log metrics whose filter selects the service ``function`` runs as."""
    [blank] = entries(['{"severity": "INFO"}'], function)
    selected = {}
    for name, metric in log_metrics().items():
        resource = " ".join(
            f"{path}{op}{value}"
            for path, op, value in clauses(metric["filter"])
            if path.startswith("resource.")
        )
        if matches(resource, blank):
            selected[name] = metric
    return selected


def matched_by_metrics(
    function: str, made: list[dict[str, Any]], skip: Iterable[str] = ()
) -> dict[str, list[Any]]:
    """For each log metric of ``function``'s service but ``skip``: the entries it matches.

    Fails if a metric matches none, or if a ``jsonPayload`` field that it reads is
    missing from a line that it matches.
    """
    matched = {}
    for name, metric in metrics_for(function).items():
        if name in skip:
            continue
        hits = [e for e in made if matches(metric["filter"], e)]
        assert hits, f"{name} matches none of {function}'s lines: {made}"
        for field in metric_fields(metric):
            missing = [e for e in hits if field not in e["jsonPayload"]]
            assert not missing, f"{name} reads jsonPayload.{field}, absent from {missing}"
        matched[name] = hits
    return matched


def _strings_under_filter_keys(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k.lower().endswith("filter") and isinstance(v, str)]
        return found + [s for v in node.values() for s in _strings_under_filter_keys(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings_under_filter_keys(v)]
    return []


def filters() -> list[tuple[str, str]]:
    """(file, filter) for every filter in monitoring/: alerts, SLIs, charts, log metrics."""
    found = [
        (f"{folder}/{path.name}", text)
        for folder in ("slos", "alert-policies", "dashboards")
        for path in files(folder)
        for text in _strings_under_filter_keys(rendered_json(path))
    ]
    return found + [(f"log-metrics/{n}.json", m["filter"]) for n, m in log_metrics().items()]
