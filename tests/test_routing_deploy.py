"""The deploy publishes firebase.json's routes in its region with a locked firebase-tools."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from diffio_progress.tools.router import routes
from tests.project import ROOT
from tests.workflows import (
    GCLOUD_STEPS,
    WORKFLOWS,
    deploy_env,
    deployed,
    fake_gcloud,
    load,
    run_bash,
    step_named,
    steps,
)

HOSTING_STEP = "Publish the routing table on Firebase Hosting"
INSTALL_STEP = "Install firebase-tools from the lockfile"
SCRIPT = ROOT / "deploy" / "hosting.py"
# webhooks-api.md §1: each public path and the entry point that answers it.
CONTRACT = {
    "/v1/get_generation_progress": "get_generation_progress",
    "/v1/webhooks/configure": "webhooks_configure",
    "/v1/webhooks/send_test_event": "webhooks_send_test_event",
    "/v1/webhooks/list_events": "webhooks_list_events",
    "/v1/webhooks/list_attempts": "webhooks_list_attempts",
    "/v1/webhooks/recover": "webhooks_recover",
    "/v1/webhooks/resend": "webhooks_resend",
}
# A stand-in for npx: records its arguments in gcloud's log (one line, \037-separated).
FAKE_NPX = r"""#!/bin/sh
printf 'npx\037' >> "$GCLOUD_LOG"
for arg in "$@"; do printf '%s\037' "$arg"; done >> "$GCLOUD_LOG"
printf '\n' >> "$GCLOUD_LOG"
"""


def checkout(tmp_path: Path) -> Path:
    """What the hosting step reads of the checkout, copied to a folder of its own."""
    repo = tmp_path / "repo"
    (repo / "deploy").mkdir(parents=True)
    shutil.copy(ROOT / "firebase.json", repo)
    shutil.copy(SCRIPT, repo / "deploy")
    shutil.copytree(ROOT / "hosting", repo / "hosting")
    return repo


def run_hosting_step(tmp_path: Path, region: str) -> tuple[Path, list[list[str]]]:
    repo = checkout(tmp_path)
    env = {**fake_gcloud(tmp_path), "PROJECT_ID": "my-project", "REGION": region}
    npx = Path(env["PATH"].split(":")[0]) / "npx"
    npx.write_text(FAKE_NPX)
    npx.chmod(0o755)
    run = step_named(load("deploy.yml"), HOSTING_STEP)["run"]
    return repo, run_bash(f'cd "$1"\n{run}', env, str(repo))


def test_the_routing_table_is_the_contract_s_and_leaves_the_region_to_the_deploy() -> None:
    assert routes() == CONTRACT
    config = json.loads((ROOT / "firebase.json").read_text())
    assert {r["function"]["region"] for r in config["hosting"]["rewrites"]} == {"${REGION}"}


def test_the_local_world_routes_the_same_table_whatever_its_region_says() -> None:
    from diffio_progress.tools.router import build_router

    client = build_router(ROOT / "main.py").test_client()
    # An empty body is refused by each function's own first check, before any key or read.
    first_refusal = {
        "get_generation_progress": "generation_id_required",
        "webhooks_configure": "invalid_mode",
        "webhooks_send_test_event": "invalid_event_type",
        "webhooks_list_events": "api_key_missing",  # every field is optional: the key is next
        "webhooks_list_attempts": "invalid_event_id",
        "webhooks_recover": "invalid_mode",
        "webhooks_resend": "invalid_event_id",
    }
    for path, function in routes().items():
        answer = client.post(path, json={})
        assert answer.get_json()["code"] == first_refusal[function]
        assert answer.status_code == (401 if function == "webhooks_list_events" else 400)
    answer = client.post("/v1/webhooks/delete", json={})
    assert (answer.status_code, answer.get_json()["code"]) == (404, "not_found")


def test_the_deploy_publishes_exactly_the_routes_of_firebase_json_in_its_region(
    tmp_path: Path,
) -> None:
    repo, calls = run_hosting_step(tmp_path, "europe-west1")
    # firebase-tools, already installed (never fetched), deploys hosting only, from the copy.
    assert calls == [
        [
            *["npx", "--no-install", "firebase", "deploy", "--only", "hosting"],
            *["--project", "my-project", "--config", "firebase.hosting.json"],
            "--non-interactive",
        ]
    ]
    published = json.loads((repo / "firebase.hosting.json").read_text())
    assert set(published) == {"hosting"}  # nothing but Hosting can be deployed from it
    rewrites = published["hosting"]["rewrites"]
    assert {r["source"]: r["function"]["functionId"] for r in rewrites} == routes()
    assert len(rewrites) == len(routes())
    assert {r["function"]["region"] for r in rewrites} == {"europe-west1"}
    # Only hosting/ is uploaded: not the checkout's root, where the auth step's
    # credentials file lies. Its 404 page is the API's not_found answer.
    public = (repo / published["hosting"]["public"]).resolve()
    assert public == (repo / "hosting").resolve() and public != repo.resolve()
    assert json.loads((public / "404.html").read_text())["code"] == "not_found"


def render(tmp_path: Path, region: str, config: Path = ROOT / "firebase.json") -> Any:
    out = tmp_path / "firebase.hosting.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), f"--region={region}", f"--out={out}", f"--config={config}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, out


@pytest.mark.parametrize("region", ["", "US-CENTRAL1", "us-central1; rm -rf /", "${REGION}"])
def test_no_routing_table_is_written_for_a_region_that_is_not_one(
    tmp_path: Path, region: str
) -> None:
    result, out = render(tmp_path, region)
    assert result.returncode == 1 and "not a region" in result.stderr
    assert not out.exists()


def test_a_region_written_into_firebase_json_is_refused(tmp_path: Path) -> None:
    config = json.loads((ROOT / "firebase.json").read_text())
    config["hosting"]["rewrites"][1]["function"]["region"] = "us-central1"
    path = tmp_path / "firebase.json"
    path.write_text(json.dumps(config))
    result, out = render(tmp_path, "europe-west1", path)
    assert result.returncode == 1 and "/v1/webhooks/configure" in result.stderr
    assert not out.exists()


def test_every_route_goes_to_a_public_http_function_this_deploy_ships_in_its_region(
    tmp_path: Path,
) -> None:
    workflow = load("deploy.yml")
    env = deploy_env(tmp_path)
    calls = [
        call for name in GCLOUD_STEPS for call in run_bash(step_named(workflow, name)["run"], env)
    ]
    functions = deployed(calls)
    for function in routes().values():
        flags = functions[function]
        assert "--trigger-http" in flags and "--allow-unauthenticated" in flags, function
        assert flags["--region"] == env["REGION"] and flags["--entry-point"] == function
    # firebase-tools looks each routed function up: it must exist when the routes go out.
    order = [s.get("name") for s in steps(workflow)]
    assert all(order.index(HOSTING_STEP) > order.index(name) for name in GCLOUD_STEPS)


def test_npm_installs_the_lockfile_without_scripts_before_any_credentials_exist() -> None:
    workflow = load("deploy.yml")
    order = [s.get("uses", s.get("name", "")).split("@")[0] for s in steps(workflow)]
    install = order.index(INSTALL_STEP)
    assert order.index("actions/setup-node") < install < order.index("google-github-actions/auth")
    assert step_named(workflow, INSTALL_STEP)["run"].split() == [
        *["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
    ]
    # No other npm tree anywhere: nothing installed unlocked, nothing fetched by npx.
    for path in WORKFLOWS.glob("*.yml"):
        for step in steps(load(path.name)):
            for line in step.get("run", "").splitlines():
                words = line.split()
                if "npm" in words and step.get("name") != INSTALL_STEP:
                    pytest.fail(f"{path.name}: npm outside the locked install: {line}")
                if "npx" in words:
                    assert words[words.index("npx") + 1] == "--no-install", line


def test_the_lockfile_pins_every_package_with_an_integrity_hash() -> None:
    manifest = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["lockfileVersion"] >= 2 and manifest["private"] is True
    assert lock["packages"][""]["dependencies"] == manifest["dependencies"]
    [(name, version)] = manifest["dependencies"].items()
    assert name == "firebase-tools" and version[0].isdigit()  # an exact version, not a range
    packages = {path: entry for path, entry in lock["packages"].items() if path}
    assert packages["node_modules/firebase-tools"]["version"] == version
    assert packages["node_modules/firebase-tools"]["bin"]["firebase"]
    assert len(packages) > 100  # the whole tree, not the direct dependency alone
    for path, entry in packages.items():
        assert entry["integrity"].startswith("sha512-"), path
        assert entry["resolved"].startswith("https://registry.npmjs.org/"), path
        assert not entry.get("link"), path
    # Every dependency of every locked package is itself locked (npm's lookup: nearest
    # node_modules upwards), so `npm ci` needs nothing the lock does not name.
    for path, entry in lock["packages"].items():
        for dependency in entry.get("dependencies", {}):
            candidates = [f"{path}/node_modules/{dependency}".lstrip("/")]
            parent = path
            while "node_modules/" in parent:
                parent = parent.rsplit("/node_modules/", 1)[0] if "/node_modules/" in parent else ""
                candidates.append(f"{parent}/node_modules/{dependency}".lstrip("/"))
            assert any(c in packages for c in candidates), (path, dependency)
