"""Release firestore.rules and request firestore.indexes.json's indexes through Google's REST APIs.

gcloud has no command for security rules, and its `firestore indexes fields update` can only set
collection-scope indexes, while a poll without apiProjectId needs the collection-group one on
generations.generationId. So this script, standard library only, does what firebase-tools did
without an npm tree in the deployer's environment: the token comes from `gcloud auth
print-access-token` (the workflow's Workload Identity credentials). Every step is idempotent:

    python3 deploy/firestore.py --project P rules --database '(default)' --database webhooks
    python3 deploy/firestore.py --project P indexes --database '(default)'
    python3 deploy/firestore.py --project P indexes --database webhooks \
        --indexes-file firestore.webhooks.indexes.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Overridable only so that the tests can answer on 127.0.0.1.
RULES_API = os.environ.get("FIREBASE_RULES_API", "https://firebaserules.googleapis.com")
ADMIN_API = os.environ.get("FIRESTORE_ADMIN_API", "https://firestore.googleapis.com")


class ApiError(Exception):
    """A Google API answered with an error status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status


def call(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> Any:
    """One JSON request; returns the decoded answer or raises ApiError."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        raise ApiError(error.code, error.read().decode(errors="replace")) from None


def release_name(database: str) -> str:
    """The rules release of a database, as firebase-tools names it."""
    return "cloud.firestore" if database == "(default)" else f"cloud.firestore/{database}"


def release_rules(project: str, databases: list[str], token: str) -> None:
    """One ruleset from firestore.rules, released to every database named."""
    source = {
        "files": [{"name": "firestore.rules", "content": (ROOT / "firestore.rules").read_text()}]
    }
    base = f"{RULES_API}/v1/projects/{project}"
    ruleset = call("POST", f"{base}/rulesets", token, {"source": source})["name"]
    for database in databases:
        name = f"projects/{project}/releases/{release_name(database)}"
        release = {"name": name, "rulesetName": ruleset}
        try:
            call("PATCH", f"{RULES_API}/v1/{name}", token, {"release": release})
            print(f"rules: updated {name} -> {ruleset}")
        except ApiError as error:
            if error.status != 404:
                raise
            call("POST", f"{base}/releases", token, release)
            print(f"rules: created {name} -> {ruleset}")


def index_fields(fields: list[dict[str, str]]) -> list[dict[str, str]]:
    """firestore.indexes.json's field entries as the Admin API's IndexField messages."""
    return [
        {k: v for k, v in field.items() if k in ("fieldPath", "order", "arrayConfig")}
        for field in fields
    ]


def request_indexes(project: str, database: str, token: str, spec: dict[str, Any]) -> None:
    """Composite indexes created unless they exist; field overrides set as the file says."""
    quoted = urllib.parse.quote(database, safe="()")
    base = f"{ADMIN_API}/v1/projects/{project}/databases/{quoted}/collectionGroups"
    for index in spec.get("indexes", []):
        body = {"queryScope": index["queryScope"], "fields": index_fields(index["fields"])}
        try:
            call("POST", f"{base}/{index['collectionGroup']}/indexes", token, body)
            print(f"indexes: requested {index['collectionGroup']} {body['fields']}")
        except ApiError as error:
            if error.status != 409:  # ALREADY_EXISTS: built or building
                raise
            print(f"indexes: exists {index['collectionGroup']} {body['fields']}")
    for override in spec.get("fieldOverrides", []):
        indexes = [
            {
                "queryScope": entry["queryScope"],
                "fields": index_fields([{"fieldPath": override["fieldPath"], **entry}]),
            }
            for entry in override.get("indexes", [])
        ]
        path = f"{override['collectionGroup']}/fields/{override['fieldPath']}"
        name = f"projects/{project}/databases/{database}/collectionGroups/{path}"
        body: dict[str, Any] = {"name": name, "indexConfig": {"indexes": indexes}}
        mask = "indexConfig"
        if override.get("ttl"):
            # A TTL policy: Firestore deletes each document once this timestamp has passed.
            body["ttlConfig"] = {}
            mask += ",ttlConfig"
        call("PATCH", f"{base}/{path}?updateMask={mask}", token, body)
        ttl = ", TTL" if override.get("ttl") else ""
        print(f"indexes: set {path} ({len(indexes)} indexes{ttl})")


def access_token() -> str:
    """The active gcloud credentials' access token (the workflow's Workload Identity ones)."""
    result = subprocess.run(
        ["gcloud", "auth", "print-access-token"], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--project", required=True)
    parser.add_argument("what", choices=["rules", "indexes"])
    parser.add_argument("--database", action="append", required=True, help="repeatable")
    parser.add_argument("--indexes-file", default=str(ROOT / "firestore.indexes.json"))
    args = parser.parse_args(argv)
    token = access_token()
    try:
        if args.what == "rules":
            release_rules(args.project, args.database, token)
        else:
            spec = json.loads(Path(args.indexes_file).read_text())
            for database in args.database:
                request_indexes(args.project, database, token, spec)
    except ApiError as error:
        print(f"firestore.py {args.what}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
