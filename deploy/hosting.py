"""firebase.json's routing table, in the deploy's region, for `firebase deploy --only hosting`.

firebase.json's ``hosting.rewrites`` is the one routing table (webhooks-api.md §1): each public
path to its function. The local world's router (diffio_progress/tools/router.py) reads it and
ignores the region; deployed, Firebase Hosting needs the region the functions run in, which is
the deploy's (GCP_REGION). So firebase.json names it as the placeholder ``${REGION}``, and this
script, standard library only, writes a copy with the region filled in and nothing but the
``hosting`` section (the Firestore rules and indexes go through deploy/firestore.py):

    python3 deploy/hosting.py --region="$REGION" --out=firebase.hosting.json
    npx --no-install firebase deploy --only hosting --config firebase.hosting.json ...
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = "${REGION}"
# A Cloud Functions region's shape (us-central1, europe-west1, northamerica-northeast2, ...).
REGION = re.compile(r"[a-z]+(-[a-z]+)+[0-9]+")


class ConfigError(ValueError):
    """firebase.json or the region cannot make a routing table to publish."""


def render(config: dict[str, Any], region: str, config_dir: Path, out_dir: Path) -> dict[str, Any]:
    """``config``'s hosting section with every function rewrite in ``region``; ``public``
    made relative to ``out_dir`` (firebase-tools resolves it from the config file's folder)."""
    if not REGION.fullmatch(region):
        raise ConfigError(f"not a region: {region!r}")
    hosting = json.loads(json.dumps(config["hosting"]))  # a deep copy
    rewrites = hosting.get("rewrites") or []
    if not rewrites:
        raise ConfigError("hosting.rewrites is empty: nothing would be routed")
    for rewrite in rewrites:
        target = rewrite.get("function")
        if not isinstance(target, dict) or not target.get("functionId"):
            raise ConfigError(f"{rewrite.get('source')}: not a rewrite to a function")
        if target.get("region") != PLACEHOLDER:
            # A region written in firebase.json would route to it whatever the deploy's is.
            raise ConfigError(f"{rewrite['source']}: region must be {PLACEHOLDER}")
        target["region"] = region
    public = (config_dir / hosting["public"]).resolve()
    hosting["public"] = os.path.relpath(public, out_dir.resolve())
    return {"hosting": hosting}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--region", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--config", default=ROOT / "firebase.json", type=Path)
    args = parser.parse_args(argv)
    try:
        config = json.loads(args.config.read_text())
        rendered = render(config, args.region, args.config.parent, args.out.parent)
    except (ConfigError, KeyError, OSError, ValueError) as error:
        print(f"hosting.py: {error}", file=sys.stderr)
        return 1
    args.out.write_text(json.dumps(rendered, indent=2) + "\n")
    for rewrite in rendered["hosting"]["rewrites"]:
        target = rewrite["function"]
        print(f"route {rewrite['source']} -> {target['functionId']} ({target['region']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
