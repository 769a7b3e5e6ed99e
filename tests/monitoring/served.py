"""A function of main.py served by functions-framework in its own process, as deployed, with
the loopback tripwire armed in it; what it printed is read back as Cloud Logging would."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffio_progress.tools.emulator import free_port
from diffio_progress.tools.processes import start_function, stop_group, wait_until_serving
from tests.monitoring.log_filter import entries
from tests.project import ROOT, TEST_PROJECT

TRIPWIRE_SITE = ROOT / "tests" / "tripwire_site"


@dataclass
class Served:
    """The served function's URL and the file its stdout goes to."""

    target: str
    url: str
    log_path: Path

    def entries(self) -> list[dict[str, Any]]:
        """Its log lines so far, as the LogEntries Cloud Logging makes of them."""
        text = self.log_path.read_text()
        assert "TRIPWIRE" not in text and "Traceback" not in text, text
        return entries(text.splitlines(), self.target)


@contextmanager
def served(target: str, firestore_host: str, log_dir: Path, **env: str) -> Iterator[Served]:
    port = free_port()
    log_path = log_dir / f"{port}.log"
    full_env = {
        **os.environ,
        "FIRESTORE_EMULATOR_HOST": firestore_host,
        "GOOGLE_CLOUD_PROJECT": TEST_PROJECT,
        "PYTHONPATH": os.pathsep.join([str(TRIPWIRE_SITE), str(ROOT)]),
        **env,
    }
    with log_path.open("ab") as log:
        process = start_function(target, ROOT / "main.py", port, env=full_env, stdout=log)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_serving(process, url, 30)
        yield Served(target, url, log_path)
    finally:
        stop_group(process)
