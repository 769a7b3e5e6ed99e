"""Firestore outages for tests: an emulator frozen (hung), killed (gone), or still dying."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from diffio_progress.tools import emulator

# A bounded answer: with a 3 s Firestore deadline this is generous (3 s, not less:
# a just-restarted emulator answers its first reads slowly).
BOUND_SECONDS = 10.0


def group_states(pgid: int) -> dict[str, str]:
    """``pid command`` → state letter of every process in group ``pgid`` (from /proc)."""
    states = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # it exited meanwhile
        # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after its ")".
        head, rest = text.rsplit(")", 1)
        fields = rest.split()
        if int(fields[2]) == pgid:
            states[head.replace(" (", " ", 1)] = fields[0]
    return states


def freeze(process: emulator.FirestoreEmulator) -> None:
    """Hung: the emulator accepts connections and never answers, so only deadlines end calls.

    Returns once every process of its group (the launcher and the JVM) is stopped.
    """
    assert process.process is not None
    pgid = process.process.pid  # the emulator runs in a group of its own
    os.killpg(pgid, signal.SIGSTOP)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        states = group_states(pgid)
        if any("java" in name for name in states) and set(states.values()) <= {"T", "t"}:
            return
        time.sleep(0.01)
    pytest.fail(f"the emulator's processes did not all stop: {group_states(pgid)}")


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
