"""deploy/setup.sh: each identity gets its roles on the database it needs; only tags deploy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.gcloud_tree import problems
from tests.project import ROOT
from tests.workflows import fake_gcloud, run_bash

SETUP = (ROOT / "deploy" / "setup.sh").read_text()
REPO = "my-org/diffio-progress"
REPO_ID = "123456789"


def account(name: str) -> str:
    return f"serviceAccount:diffio-progress-{name}@p.iam.gserviceaccount.com"


def setup_calls(
    tmp_path: Path, exists: bool = False, sink: str = "svix", lookup: str = "true"
) -> list[list[str]]:
    env = {**fake_gcloud(tmp_path), "PROJECT": "p", "REGION": "us-central1", "REPO": REPO}
    env.update(REPO_ID=REPO_ID, WEBHOOK_SINK=sink, CLOUD_RUN_LOOKUP=lookup)
    env.update(GCLOUD_EXISTS="1" if exists else "")
    return run_bash(SETUP, env)


def flag(call: list[str], name: str) -> str | None:
    found = [word.split("=", 1)[1] for word in call if word.startswith(f"{name}=")]
    return found[0] if found else None


def project_grants(calls: list[list[str]]) -> dict[tuple[str, str], str | None]:
    """(member, role) -> the condition's expression (None without one), project-level grants."""
    grants = {}
    for call in calls:
        if call[:2] == ["projects", "add-iam-policy-binding"]:
            condition = flag(call, "--condition")
            expression = None if condition == "None" else condition
            if expression:
                expression = expression.split(",title=")[0].removeprefix("expression=")
            key = (flag(call, "--member") or "", flag(call, "--role") or "")
            assert key not in grants, key
            grants[key] = expression
    return grants


def on(database: str) -> str:
    return f'resource.name == "projects/p/databases/{database}"'


# The least-privilege table of docs/security.md, as conditions on the database's name.
FIRESTORE_ROLES = {
    ("runtime", "roles/datastore.viewer"): on("(default)"),
    ("webhooks", "roles/datastore.viewer"): on("(default)"),
    ("webhooks", "roles/datastore.user"): on("webhooks"),
    # The outbox is in the webhooks database (docs/delivery-storage.md).
    ("events", "roles/datastore.viewer"): on("(default)"),
    ("events", "roles/datastore.user"): on("webhooks"),
    ("reaper", "roles/datastore.user"): on("(default)"),
    ("relay", "roles/datastore.user"): on("webhooks"),
}


def test_every_gcloud_call_of_the_setup_is_a_real_command_with_real_flags(tmp_path: Path) -> None:
    for exists in (False, True):
        for call in setup_calls(tmp_path, exists):
            assert not problems(call), (call, problems(call))


def test_firestore_roles_are_conditioned_on_the_one_database_each_identity_needs(
    tmp_path: Path,
) -> None:
    grants = project_grants(setup_calls(tmp_path))
    data_roles = ("roles/datastore.viewer", "roles/datastore.user", "roles/datastore.owner")
    firestore = {key: cond for key, cond in grants.items() if key[1] in data_roles}
    expected = {(account(name), role): cond for (name, role), cond in FIRESTORE_ROLES.items()}
    assert firestore == expected
    # The progress function's identity reads no webhooks database; nobody invokes project-wide.
    assert not [key for key in grants if key[1] == "roles/run.invoker"]
    assert grants[(account("events"), "roles/eventarc.eventReceiver")] is None


def test_a_rerun_removes_the_wider_grants_of_earlier_setups(tmp_path: Path) -> None:
    calls = setup_calls(tmp_path, exists=True)
    removed = {
        (flag(c, "--member"), flag(c, "--role"), flag(c, "--condition"))
        for c in calls
        if c[:2] == ["projects", "remove-iam-policy-binding"]
    }
    assert (account("events"), "roles/run.invoker", "None") in removed
    assert (account("events"), "roles/datastore.user", "None") in removed
    # The outbox moved: the events identity's write grant on (default) is taken back.
    assert any(
        m == account("events") and r == "roles/datastore.user" and "(default)" in str(c)
        for m, r, c in removed
    )
    assert not [c for c in calls if c[:3] == ["firestore", "databases", "create"]]
    assert [
        c[3]
        for c in calls
        if c[:3] == ["iam", "workload-identity-pools", "providers"] and c[3].endswith("-oidc")
    ] == ["update-oidc"]


def test_a_rerun_with_narrower_choices_removes_the_grants_it_no_longer_makes(
    tmp_path: Path,
) -> None:
    calls = setup_calls(tmp_path, exists=True, sink="direct", lookup="false")
    removed = {
        (c[0], flag(c, "--member"), flag(c, "--role"))
        for c in calls
        if len(c) > 1 and c[1] == "remove-iam-policy-binding"
    }
    assert ("projects", account("runtime"), "roles/run.viewer") in removed
    for name in ("events", "webhooks"):
        assert ("secrets", account(name), "roles/secretmanager.secretAccessor") in removed
    assert not [c for c in calls if c[:2] == ["secrets", "add-iam-policy-binding"]]


def test_the_secrets_key_is_created_once_and_only_the_signers_may_decrypt(
    tmp_path: Path,
) -> None:
    first, again = setup_calls(tmp_path), setup_calls(tmp_path, exists=True)
    creates = [c[:3] for c in first if c[0] == "kms" and c[2] == "create"]
    assert creates == [["kms", "keyrings", "create"], ["kms", "keys", "create"]]
    assert not [c for c in again if c[0] == "kms" and c[2] == "create"]
    grants = {
        (flag(c, "--member"), flag(c, "--role"))
        for c in first
        if c[:3] == ["kms", "keys", "add-iam-policy-binding"]
    }
    decrypt, encrypt = "roles/cloudkms.cryptoKeyDecrypter", "roles/cloudkms.cryptoKeyEncrypter"
    assert grants == {
        (account("events"), decrypt),
        (account("relay"), decrypt),
        (account("webhooks"), decrypt),
        (account("webhooks"), encrypt),
    }


def test_a_first_run_creates_the_webhooks_database_and_the_provider(tmp_path: Path) -> None:
    calls = setup_calls(tmp_path)
    [create] = [c for c in calls if c[:3] == ["firestore", "databases", "create"]]
    assert "--database=webhooks" in create
    assert [
        c[3]
        for c in calls
        if c[:3] == ["iam", "workload-identity-pools", "providers"] and c[3].endswith("-oidc")
    ] == ["create-oidc"]


def test_the_svix_tokens_are_readable_by_the_functions_that_send_only(tmp_path: Path) -> None:
    calls = setup_calls(tmp_path)
    readers = {
        (c[2], flag(c, "--member")) for c in calls if c[:2] == ["secrets", "add-iam-policy-binding"]
    }
    assert readers == {
        ("svix-api-token", account("events")),
        ("svix-api-token", account("relay")),
        ("svix-api-token", account("webhooks")),
        ("svix-test-api-token", account("webhooks")),
    }
    off = setup_calls(tmp_path, sink="off")
    assert not [c for c in off if c[:2] == ["secrets", "add-iam-policy-binding"]]


def test_the_deployer_may_publish_the_routes_and_the_docs_say_so(tmp_path: Path) -> None:
    grants = project_grants(setup_calls(tmp_path))
    for role in ("roles/firebasehosting.admin", "roles/serviceusage.serviceUsageConsumer"):
        assert grants[(account("deployer"), role)] is None, role  # project-wide: sites, APIs
    calls = setup_calls(tmp_path)
    [enable] = [c for c in calls if c[:2] == ["services", "enable"]]
    assert "firebasehosting.googleapis.com" in enable and "firebase.googleapis.com" in enable
    security = (ROOT / "docs" / "security.md").read_text()
    assert re.search(r"^\| deployer \|[^\n]*`roles/firebasehosting.admin`", security, re.M)
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert "TRUSTED_PROXY_HOPS=2" in operations and "unverified" in operations


@pytest.fixture(scope="module")
def attribute_condition(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The provider's condition as a first run of the setup creates it."""
    calls = setup_calls(tmp_path_factory.mktemp("setup"))
    [call] = [c for c in calls if c[3:4] == ["create-oidc"]]
    condition = flag(call, "--attribute-condition")
    assert condition
    return condition


def admits(condition: str, claims: dict[str, Any]) -> bool:
    """Evaluates the provider's CEL condition (==, &&, startsWith) over GitHub's token claims."""
    python = condition.replace("&&", " and ").replace(".startsWith(", ".startswith(")
    python = re.sub(r"assertion\.(\w+)", r"claims[\1!r]", python)
    python = re.sub(r"claims\[(\w+)!r\]", lambda m: f"claims.get({m.group(1)!r}, '')", python)
    return bool(eval(python, {"__builtins__": {}}, {"claims": claims}))  # noqa: S307


TAG_DEPLOY = {
    "repository": REPO,
    "repository_id": REPO_ID,
    "ref": "refs/tags/v1.2.0",
    "environment": "production",
    "job_workflow_ref": f"{REPO}/.github/workflows/deploy.yml@refs/tags/v1.2.0",
}


@pytest.mark.parametrize(
    ("claims", "admitted"),
    [
        (TAG_DEPLOY, True),
        (
            {
                **TAG_DEPLOY,
                "ref": "refs/heads/feature",
                "job_workflow_ref": f"{REPO}/.github/workflows/deploy.yml@refs/heads/feature",
            },
            False,
        ),
        ({**TAG_DEPLOY, "environment": ""}, False),
        (
            {
                **TAG_DEPLOY,
                "job_workflow_ref": f"{REPO}/.github/workflows/other.yml@refs/tags/v1.2.0",
            },
            False,
        ),
        ({**TAG_DEPLOY, "repository": "someone/fork"}, False),
        ({**TAG_DEPLOY, "repository_id": "987654321"}, False),
        ({**TAG_DEPLOY, "ref": "refs/pull/7/merge"}, False),
    ],
    ids=[
        "v-tag-deploy",
        "branch",
        "no-environment",
        "other-workflow",
        "fork",
        "same-name-another-repository",
        "pull-request",
    ],
)
def test_the_workload_identity_provider_admits_only_a_v_tag_deploy_in_production(
    attribute_condition: str, claims: dict[str, Any], admitted: bool
) -> None:
    assert admits(attribute_condition, claims) is admitted


def test_the_deployer_is_impersonable_by_the_production_environment_alone(tmp_path: Path) -> None:
    calls = setup_calls(tmp_path)
    users = [
        flag(c, "--member")
        for c in calls
        if c[:3] == ["iam", "service-accounts", "add-iam-policy-binding"]
        and flag(c, "--role") == "roles/iam.workloadIdentityUser"
    ]
    pool = "projects/123456789012/locations/global/workloadIdentityPools/github"
    assert users == [
        f"principal://iam.googleapis.com/{pool}/subject/repo:{REPO}:environment:production"
    ]


def test_the_docs_give_the_same_condition_and_grants() -> None:
    docs = (ROOT / "docs" / "security.md").read_text()
    for fact in (
        "assertion.environment == 'production'",
        "assertion.repository_id == ",
        "refs/tags/v",
        "deploy.yml@refs/tags/v",
    ):
        assert fact in docs, fact
    for (name, role), condition in FIRESTORE_ROLES.items():
        database = condition.split("/databases/")[1].rstrip('"')
        row = rf"^\| {name}\b[^\n]*\| `{re.escape(role)}` \| database `{re.escape(database)}` \|"
        assert re.search(row, docs, re.MULTILINE), (name, role, database)
