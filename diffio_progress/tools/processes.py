"""Child processes: a function served by functions-framework; process groups stopped completely."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

_PROC = Path("/proc")
# The folder holding main.py and the package: the served source imports from it.
_REPOSITORY = Path(__file__).resolve().parents[2]


class NotServing(RuntimeError):
    """A served function exited or did not answer during start-up."""


def start_function(
    target: str | None,
    source: Path,
    port: int,
    *,
    env: dict[str, str],
    stdout: IO[Any] | int,
    host: str = "127.0.0.1",
    cpus: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """functions-framework serving ``target`` from ``source`` on ``host:port``.

    ``target`` ``None``: every function of the routing table, each on its path
    (``tools/router.py``), as the deployed API answers them behind one address.

    Served through ``tools/serve_function.py``: functions-framework's own app and
    gunicorn server, with a keep-alive longer than a client's poll interval.
    It runs in its own process group: stop it with ``stop_group``. ``cpus``
    pins it (and the workers it forks) to those CPUs with ``taskset``.
    """
    pinned = ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []
    return subprocess.Popen(
        [*pinned, sys.executable, "-m", "diffio_progress.tools.serve_function"]
        + ["--routes" if target is None else f"--target={target}"]
        + [f"--source={source}", f"--host={host}", f"--port={port}"],
        cwd=_REPOSITORY,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_until_serving(process: subprocess.Popen[bytes], url: str, timeout: float) -> None:
    """Return once ``url`` answers an OPTIONS request with any HTTP status.

    Raises ``NotServing`` if the process exits first or ``timeout`` passes.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NotServing("exited during start-up")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="OPTIONS"), timeout=1):
                return
        except urllib.error.HTTPError:
            return  # an error status is still an answer: the server is up
        except OSError:
            time.sleep(0.1)
    raise NotServing(f"did not answer at {url} within {timeout:g} s")


def stop_group(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group led by ``process`` (started with ``start_new_session``),
    SIGKILL it after ``grace`` seconds, and return only once no member is left running.

    Waiting for the leader alone is not enough: the Firestore launcher is a shell
    script whose JVM child outlives it for a moment and keeps the port.
    """
    group = process.pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            break
        if _wait_until_gone(process, group, wait):
            break
    process.poll()


def _wait_until_gone(process: subprocess.Popen[bytes], group: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.poll()  # reap the leader so it does not linger as a zombie
        if not _group_running(group):
            return True
        time.sleep(0.05)
    return False


def _group_running(group: int) -> bool:
    """Whether any process of ``group`` is still running (zombies do not count)."""
    if not _PROC.is_dir():
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    return any(state not in ("Z", "X") for _, state in group_members(group).values())


def group_members(group: int) -> dict[int, tuple[str, str]]:
    """pid → (command, state letter) of every process in process group ``group`` (Linux /proc)."""
    members = {}
    for stat in _PROC.glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after its ")".
            head, rest = stat.read_text().rsplit(")", 1)
            state, pgrp = rest.split()[0], int(rest.split()[2])
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
        if pgrp == group:
            pid, _, command = head.partition(" (")
            members[int(pid)] = (command, state)
    return members
