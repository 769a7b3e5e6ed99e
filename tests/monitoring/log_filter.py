"""The part of the Logging query language monitoring/'s filters use, over entries that Cloud
Run's structured logging makes from the functions' JSON lines.

Only ``field OP value`` clauses joined by spaces or AND: anything else (OR, NOT,
parentheses) is refused, so a filter this cannot judge fails the test that uses it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

# Keys of a JSON line that Cloud Logging lifts out of jsonPayload into the LogEntry
# (https://cloud.google.com/logging/docs/structured-logging, "Special JSON fields").
_LIFTED = {
    "severity": "severity",
    "httpRequest": "httpRequest",
    "logging.googleapis.com/trace": "trace",
    "logging.googleapis.com/spanId": "spanId",
    "logging.googleapis.com/labels": "labels",
    "logging.googleapis.com/insertId": "insertId",
    "logging.googleapis.com/sourceLocation": "sourceLocation",
    "time": "timestamp",
    "timestamp": "timestamp",
}
_SEVERITIES = ["DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT"]
_CLAUSE = re.compile(
    r"\s*(?:AND\s+)?(?P<path>[\w.]+)\s*(?P<op>=~|!=|>=|<=|=|:|>|<)\s*"
    r'(?P<value>"(?:[^"\\]|\\.)*"|\*|[\w.+-]+)\s*'
)


class Unsupported(ValueError):
    """A filter uses syntax beyond what this module judges."""


def service_name(function: str) -> str:
    """The Cloud Run service a gen2 function runs as: lower case, ``_`` made ``-``."""
    return function.lower().replace("_", "-")


def entries(lines: Iterable[str], function: str) -> list[dict[str, Any]]:
    """The LogEntries Cloud Logging makes of a function's stdout lines (non-JSON ones skipped)."""
    made = []
    for line in lines:
        try:
            payload = json.loads(line)
        except ValueError:
            continue
        if not isinstance(payload, dict):
            continue
        entry: dict[str, Any] = {
            "resource": {
                "type": "cloud_run_revision",
                "labels": {"service_name": service_name(function)},
            },
        }
        for key, target in _LIFTED.items():
            if key in payload:
                entry[target] = payload.pop(key)
        entry["jsonPayload"] = payload
        made.append(entry)
    return made


def clauses(text: str) -> list[tuple[str, str, str]]:
    """(path, operator, value) of each clause; ``Unsupported`` for any other syntax."""
    found, at = [], 0
    while at < len(text.rstrip()):
        match = _CLAUSE.match(text, at)
        if match is None or match.group("path") in {"OR", "NOT"}:
            raise Unsupported(f"cannot judge {text[at:]!r}")
        value = match.group("value")
        found.append((match.group("path"), match.group("op"), value))
        at = match.end()
    return found


def _lookup(entry: dict[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = entry
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _holds(present: bool, actual: Any, path: str, op: str, raw: str) -> bool:
    if op == ":" and raw == "*":
        return present
    if not present:
        return op == "!="
    value = json.loads(raw) if raw.startswith('"') else raw
    if op == "=~":
        return re.search(value, str(actual)) is not None
    if path == "severity":
        rank, wanted = _SEVERITIES.index(str(actual)), _SEVERITIES.index(str(value))
        return {"=": rank == wanted, "!=": rank != wanted, ">=": rank >= wanted}[op]
    if op in {">=", "<=", ">", "<"}:
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return False
        number = float(value)
        return {">=": actual >= number, "<=": actual <= number, ">": actual > number}.get(
            op, actual < number
        )
    if op == "=":
        return str(actual) == str(value)
    if op == "!=":
        return str(actual) != str(value)
    raise Unsupported(f"{path}{op}{raw}")  # ':' with a value: substring matching, not used


def matches(text: str, entry: dict[str, Any]) -> bool:
    """Whether the entry passes every clause of the filter."""
    for path, op, raw in clauses(text):
        present, actual = _lookup(entry, path)
        if not _holds(present, actual, path, op, raw):
            return False
    return True
