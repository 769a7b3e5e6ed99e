"""Stopping child process groups completely (the emulator's JVM runs under a launcher script)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

_PROC = Path("/proc")


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
    for stat in _PROC.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        state, pgrp = fields[0], int(fields[2])
        if pgrp == group and state not in ("Z", "X"):
            return True
    return False
