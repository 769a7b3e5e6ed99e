"""The installed Cloud SDK's static command tree: does a gcloud call name real commands, flags?"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

COMPLETIONS = Path("data", "cli", "gcloud_completions.py")


@functools.cache
def tree() -> dict[str, Any]:
    """STATIC_COMPLETION_CLI_TREE from the SDK's data/cli/gcloud_completions.py."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.fail("gcloud is needed to check the deploy's commands and flags", pytrace=False)
    # .../google-cloud-sdk/bin/gcloud, possibly behind a symlink: its SDK is two folders up.
    # Asking `gcloud info` costs a second and a half of CPU in each worker that checks.
    path = Path(os.path.realpath(gcloud)).parent.parent / COMPLETIONS
    if not path.is_file():
        root = subprocess.run(
            [gcloud, "info", "--format=value(installation.sdk_root)"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
        path = Path(root) / COMPLETIONS
    spec = importlib.util.spec_from_file_location("gcloud_completions", path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found: dict[str, Any] = module.STATIC_COMPLETION_CLI_TREE
    return found


def problems(argv: list[str]) -> list[str]:
    """What in ``argv`` (gcloud's arguments, without "gcloud") the installed SDK does not know.

    The command path is every leading word that names a subcommand; it must end at a command
    without subcommands. Each --flag must be that command's or a gcloud-wide one; a flag whose
    values the tree lists must take one of them (values from a shell variable are not checked).
    """
    root = tree()
    node, path = root, list[str]()
    for word in argv:
        if word not in node.get("commands", {}):
            break
        node, path = node["commands"][word], [*path, word]
    found = []
    if not path or node.get("commands"):
        found.append(f"not a command: gcloud {' '.join(argv[:4])}")
    flags = {**root.get("flags", {}), **node.get("flags", {})}
    for word in argv[len(path) :]:
        if not word.startswith("--"):
            continue
        name, _, value = word.partition("=")
        if name.startswith("--no-") and f"--{name[5:]}" in flags:
            continue  # a boolean flag's negation
        if name not in flags:
            found.append(f"gcloud {' '.join(path)}: unknown flag {name}")
        elif isinstance(flags[name], list) and value and "$" not in value:
            if value.strip("'\"").lower() not in flags[name]:  # gcloud ignores case
                found.append(f"gcloud {' '.join(path)}: {name}={value} not in {flags[name]}")
    return found
