"""Firestore outages for tests: an emulator frozen (hung), killed (gone), or still dying."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from diffio_progress.tools import emulator
from diffio_progress.tools.processes import group_members

# A bounded answer: with a 3 s Firestore deadline this is generous (3 s, not less:
# a just-restarted emulator answers its first reads slowly).
BOUND_SECONDS = 10.0


def freeze(process: emulator.FirestoreEmulator) -> None:
    """Hung: the emulator accepts connections and never answers, so only deadlines end calls.

    Returns once every process of its group (the launcher and the JVM) is stopped.
    """
    assert process.process is not None
    pgid = process.process.pid  # the emulator runs in a group of its own
    os.killpg(pgid, signal.SIGSTOP)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        members = group_members(pgid).values()
        if any(command == "java" for command, _ in members) and all(
            state in ("T", "t") for _, state in members
        ):
            return
        time.sleep(0.01)
    pytest.fail(f"the emulator's processes did not all stop: {group_members(pgid)}")


def thaw(process: emulator.FirestoreEmulator) -> None:
    assert process.process is not None
    os.killpg(process.process.pid, signal.SIGCONT)


@contextmanager
def frozen(process: emulator.FirestoreEmulator) -> Iterator[None]:
    """The emulator hung for the block, and answering again after it."""
    freeze(process)
    try:
        yield
    finally:
        thaw(process)


def kill(process: emulator.FirestoreEmulator) -> None:
    """Gone at once (SIGKILL, no graceful stop): every open connection drops mid-call."""
    assert process.process is not None
    os.killpg(process.process.pid, signal.SIGKILL)


def wait_until_refused(host: str, port: int, timeout: float = 15.0) -> None:
    """Until nothing accepts connections on ``port``.

    ``stop()`` returns once the launcher exits; the JVM it started may listen a
    moment longer, and a call or a restart must not reach that dying emulator.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
        except OSError:
            return
        time.sleep(0.05)
    pytest.fail(f"the stopped emulator still accepts connections on {host}:{port}")


def stop(process: emulator.FirestoreEmulator) -> None:
    """Gone: stopped, and no longer accepting connections."""
    process.stop()
    wait_until_refused(process.host, process.port)
