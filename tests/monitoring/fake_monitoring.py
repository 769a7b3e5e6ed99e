"""Local stand-ins for what monitoring/apply.sh talks to: the Monitoring API v3 (services,
SLOs, alert policies) on 127.0.0.1, and a ``gcloud`` that keeps log metrics and dashboards.

Both refuse what the real ones refuse in the ways that matter here: a missing token,
a body that does not parse strictly, an update of what does not exist, a create of what
does, an alert naming an SLO that does not exist, a dashboard update with a stale etag, an
alert naming a log metric just created (404 for its first ``metric_lag`` writes). Both answer
what they keep as the real ones do: proto3 JSON without default values, with the fields the
server sets (names, an alert's records and condition names).
"""

from __future__ import annotations

import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from google.cloud import monitoring_v3

TOKEN = "ya29.test-token"
_TYPES: dict[str, Any] = {
    "services": monitoring_v3.Service,
    "serviceLevelObjectives": monitoring_v3.ServiceLevelObjective,
    "alertPolicies": monitoring_v3.AlertPolicy,
    "uptimeCheckConfigs": monitoring_v3.UptimeCheckConfig,
}
_LISTED = ("alertPolicies", "uptimeCheckConfigs")  # kinds whose ids the API chooses


def as_served(kind: Any, body: str) -> dict[str, Any]:
    """``body`` parsed strictly into ``kind``, as the API serves it back: no default values."""
    message = kind.from_json(body, ignore_unknown_fields=False)
    text = kind.to_json(
        message, use_integers_for_enums=False, always_print_fields_with_no_presence=False
    )
    served: dict[str, Any] = json.loads(text)
    return served


class FakeMonitoring:
    """The Monitoring API v3's create, get, patch and list, kept in a dict by resource name."""

    def __init__(self) -> None:
        self.resources: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.masks: list[str | None] = []  # each PATCH's updateMask
        self.failing: set[str] = set()  # kinds whose writes answer 500
        self.metric_lag = 0  # writes naming a log metric that answer 404 before it is visible
        self._unseen: dict[str, int] = {}
        self._ids = iter(range(1000, 10**6))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        return {n: r for n, r in self.resources.items() if n.split("/")[-2] == kind}

    def answer(self, method: str, url: str, body: bytes) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(url)
        name = parts.path.removeprefix("/v3/")
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.calls.append((method, name))
        if method != "GET" and {name.split("/")[-1], name.split("/")[-2]} & self.failing:
            return 500, {"error": {"message": "backend error"}}
        if method == "GET" and name.endswith(_LISTED):
            kind = name.split("/")[-1]
            wanted = re.fullmatch(r'user_label\.(\w+)="(.*)"', query.get("filter", ""))
            found = [
                p
                for n, p in self.of_kind(kind).items()
                if wanted is None or p.get("userLabels", {}).get(wanted[1]) == wanted[2]
            ]
            return 200, {kind: found} if found else {}
        if method != "GET" and self._not_visible_yet(body):
            return 404, {"error": {"message": "Cannot find the log metric named"}}
        if method == "GET":
            return (200, self.resources[name]) if name in self.resources else (404, {})
        if method == "POST":
            kind = name.split("/")[-1]
            given = query.get({"services": "serviceId"}.get(kind, "serviceLevelObjectiveId"))
            name = f"{name}/{given or next(self._ids)}"
            if name in self.resources or not self._parent_exists(name):
                return 409 if name in self.resources else 404, {}
        elif method != "PATCH" or name not in self.resources:
            return 404, {}
        elif "updateMask" in query:
            # The fields listed are replaced; the others keep what they held.
            patch = json.loads(body)
            kept = {k: v for k, v in self.resources[name].items() if k not in patch}
            unknown = set(query["updateMask"].split(",")) - set(patch)
            if unknown:
                return 400, {"error": {"message": f"updateMask names {unknown}, not in the body"}}
            body = json.dumps({**kept, **patch}).encode()
        self.masks.append(query.get("updateMask"))
        return self._store(name, body)

    def _not_visible_yet(self, body: bytes) -> bool:
        """Whether a log metric the body names is one created too recently to be found."""
        for metric in set(re.findall(r"logging\.googleapis\.com/user/(\w+)", body.decode())):
            left = self._unseen.setdefault(metric, self.metric_lag)
            if left:
                self._unseen[metric] = left - 1
                return True
        return False

    def _parent_exists(self, name: str) -> bool:
        parent = name.rsplit("/", 2)[0]
        return parent.count("/") == 1 or parent in self.resources

    def _store(self, name: str, body: bytes) -> tuple[int, dict[str, Any]]:
        kind = name.split("/")[-2]
        try:
            resource = as_served(_TYPES[kind], body.decode())
        except Exception as error:  # what the API answers for a body it cannot read
            return 400, {"error": {"message": str(error)}}
        if resource.get("name", name) != name and kind not in _LISTED:
            return 400, {"error": {"message": f"name {resource['name']} is not {name}"}}
        for slo in re.findall(r'select_slo_burn_rate\(\\?"([^"\\]+)', json.dumps(resource)):
            if slo not in self.resources:
                return 400, {"error": {"message": f"no SLO {slo}"}}
        if kind == "alertPolicies":
            record = {"mutateTime": "2026-12-01T00:00:00Z", "mutatedBy": "deployer"}
            resource["creationRecord"] = self.resources.get(name, {}).get("creationRecord", record)
            resource["mutationRecord"] = record
            for at, condition in enumerate(resource.get("conditions", [])):
                condition["name"] = f"{name}/conditions/{at}"
        self.resources[name] = {**resource, "name": name}
        return 200, self.resources[name]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # answers curl's Expect: 100-continue at once

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    status, answer = 401, {"error": {"message": "no valid token"}}
                else:
                    status, answer = fake.answer(self.command, self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


# gcloud as apply.sh calls it: each call's arguments (and the config file it names) are
# appended to $GCLOUD_LOG as one JSON line; log metrics and dashboards live in $GCLOUD_STATE.
FAKE_GCLOUD = r"""#!PYTHON
import json, os, pathlib, sys
args = sys.argv[1:]
config = next((a.split("=", 1)[1] for a in args if a.startswith("--config-from-file=")), None)
text = pathlib.Path(config).read_text() if config else None
with open(os.environ["GCLOUD_LOG"], "a") as log:
    log.write(json.dumps({"args": args, "config": text}) + "\n")
state = pathlib.Path(os.environ["GCLOUD_STATE"])
def served(node):  # as the APIs answer: without proto3 default values (0, "", false, [], {})
    if isinstance(node, dict):
        kept = {k: served(v) for k, v in node.items()}
        return {k: v for k, v in kept.items() if v not in (0, "", False, [], {}, None)}
    return [served(v) for v in node] if isinstance(node, list) else node
words = [a for a in args if not a.startswith("--")]
if words[:2] == ["auth", "print-access-token"]:
    print(os.environ["GCLOUD_TOKEN"])
elif words[:3] == ["logging", "metrics", "list"]:
    kept = sorted(state.glob("metric-*"))
    listed = [{**served(json.loads(k.read_text())), "name": k.name[7:]} for k in kept]
    print(json.dumps(listed))
elif words[:3] in (["logging", "metrics", "create"], ["logging", "metrics", "update"]):
    kept = state / ("metric-" + words[3])
    if (words[2] == "create") == kept.exists():
        sys.exit("ERROR: (gcloud) " + ("exists" if kept.exists() else "not found"))
    kept.write_text(text)
elif words[:3] == ["monitoring", "dashboards", "describe"]:
    kept = state / ("dashboard-" + words[3])
    if not kept.exists():
        sys.exit("ERROR: (gcloud) not found")
    print(json.dumps(served(json.loads(kept.read_text()))))
elif words[:3] == ["monitoring", "dashboards", "create"]:
    board = json.loads(text)
    kept = state / ("dashboard-" + board["name"].split("/")[-1])
    if kept.exists():
        sys.exit("ERROR: (gcloud) exists")
    kept.write_text(json.dumps({**board, "etag": "etag-1"}))
elif words[:3] == ["monitoring", "dashboards", "update"]:
    board, kept = json.loads(text), state / ("dashboard-" + words[3])
    old = json.loads(kept.read_text())
    if board.get("etag") != old["etag"]:
        sys.exit("ERROR: (gcloud) etag mismatch")
    kept.write_text(json.dumps({**board, "etag": old["etag"] + "+"}))
else:
    sys.exit("fake gcloud: unexpected call " + " ".join(args))
""".replace("PYTHON", sys.executable, 1)


def install_gcloud(bin_dir: Path) -> Path:
    """The fake gcloud as ``bin_dir/gcloud``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(FAKE_GCLOUD)
    gcloud.chmod(0o755)
    return gcloud
