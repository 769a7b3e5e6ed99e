"""Which modules a piece of code loads, asked of a fresh interpreter (cold start, layout)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.project import ROOT


def modules_loaded_by(code: str, env: dict[str, str] | None = None) -> set[str]:
    """Run ``code`` in a fresh Python in the repository; every module name it left loaded."""
    probe = code + "\nimport json as _json, sys as _sys\nprint(_json.dumps(sorted(_sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def loaded(modules: set[str], name: str) -> bool:
    """Whether ``name`` or any module inside it is among ``modules``."""
    return any(m == name or m.startswith(name + ".") for m in modules)
