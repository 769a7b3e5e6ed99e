"""`python -m diffio_progress run`: a live world from one command, and nothing left after it."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue

import httpx
import pytest

from diffio_progress.tools import emulator
from tests.project import ROOT


class World:
    """A `run` subprocess whose output is read line by line."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.port = emulator.free_port()
        self.firestore_port = emulator.free_port()
        command = [sys.executable, "-m", "diffio_progress", "run", "--port", str(self.port)]
        command += ["--firestore-port", str(self.firestore_port), *args]
        self.process = subprocess.Popen(
            # As `make run &` from a shell starts it: with SIGINT ignored (the trap is
            # inherited through exec). Ctrl-C must still work. A preexec_fn would run
            # gRPC's fork handlers in this process's child and can crash it.
            ["bash", "-c", 'trap "" INT; exec "$@"', "run", *command],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: Queue[str | None] = Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=deadline - time.monotonic())
            except Empty:
                break
            if line is None:
                pytest.fail("run exited early:\n" + "\n".join(self.lines))
            self.lines.append(line)
            if re.search(pattern, line):
                return line
        pytest.fail(f"no line matching {pattern!r} in {timeout} s:\n" + "\n".join(self.lines))

    def find(self, pattern: str, timeout: float = 120) -> str:
        """A line already read that matches ``pattern``, else the next one that does."""
        for line in self.lines:
            if re.search(pattern, line):
                return line
        return self.wait_for(pattern, timeout)

    def stop(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(60)
        self.wait_for("Stopped; nothing is left running", timeout=5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            # SIGTERM first: run stops what it started; SIGKILL would strand them.
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()


def nothing_listens(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def processes_using(port: int) -> list[str]:
    """Command lines of live processes that name ``port`` (the emulator's JVM does)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if re.search(rf"port[= ]{port}\b", cmdline) and "pytest" not in cmdline:
            found.append(cmdline)
    return found


def env_without_emulator() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "FIRESTORE_EMULATOR_HOST"}
    # run, its functions and its bridge all deliver to loopback only, or trip (tests/tripwire.py).
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests" / "tripwire_site"), str(ROOT)])
    return env


@pytest.fixture
def world() -> Iterator[World]:
    started = World("--step-seconds", "0.1", "--reaper-seconds", "1", env=env_without_emulator())
    yield started
    started.kill()


@pytest.mark.slow
def test_run_serves_a_live_world_and_ctrl_c_leaves_nothing_running(world: World) -> None:
    curl = world.wait_for(r"^\s*curl ").strip()
    watch = world.wait_for(r"-m diffio_progress watch ").strip()
    key = re.search(r"export DIFFIO_API_KEY=(\S+)", "\n".join(world.lines))
    assert key is not None
    env = {**os.environ, "DIFFIO_API_KEY": key.group(1)}

    # The printed curl command, pasted into a shell as it is.
    answer = subprocess.run(
        ["bash", "-c", curl + " -s -w '\\n%{http_code}'"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    body, status = answer.stdout.rsplit("\n", 1)
    assert status == "200", answer.stdout
    assert json.loads(body)["generationId"] in watch

    # The printed watch command follows the live generation to complete.
    watched = subprocess.run(
        ["bash", "-c", watch + " --json --interval 0.1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert watched.returncode == 0, watched.stderr
    assert json.loads(watched.stdout.splitlines()[-1])["status"] == "complete"

    # The demo generations are in the states the output lists.
    url = f"http://127.0.0.1:{world.port}/v1/get_generation_progress"
    listed = re.findall(r"^\s+(demo-\S+)\s+(gen-\S+)\s+(\w+)$", "\n".join(world.lines), re.M)
    assert {state for _, _, state in listed} == {
        "pending",
        "complete",
        "failed",
        "processing",
        "live",
    }
    for project, generation, state in listed:
        if state == "live":
            continue
        response = httpx.post(
            url,
            json={"generationId": generation, "apiProjectId": project},
            headers={"Authorization": f"Bearer {key.group(1)}"},
        )
        assert response.json()["status"] == state, (generation, response.text)

    # The live generation's events reached the receiver, verified, through the bridge.
    live = json.loads(body)["generationId"]
    world.wait_for(rf"webhook  generation\.completed +{live} \(demo-video\) complete .*verified")

    # The printed delivery-log commands list that event: the API's with the key, the operator's.
    listed_curl = world.find(r"webhooks/list_events").strip()
    answer = subprocess.run(
        ["bash", "-c", listed_curl + " -s"], env=env, capture_output=True, text=True, timeout=30
    )
    logged = json.loads(answer.stdout)["events"]
    assert any(
        e["generationId"] == live and e["eventType"] == "generation.completed" for e in logged
    )
    operator = world.find(r"-m diffio_progress webhooks events --key-id").strip()
    listing = subprocess.run(
        ["bash", "-c", operator], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert listing.returncode == 0 and live in listing.stdout, listing.stderr

    # A killed worker: the printed command, then the reaper fails its stage (watch exits 1),
    # and the reaper's write raises generation.failed at the receiver.
    kill = world.find(r"--kill-stage inference --api-key-id \S+$").strip()
    killed = subprocess.run(
        ["bash", "-c", kill + " --step-seconds 0.1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == 0, killed.stderr
    assert "inference: killed" in killed.stdout
    generation = killed.stdout.splitlines()[-1].split(":")[0]
    watched = subprocess.run(
        ["bash", "-c", watch.replace(live, generation) + " --json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert watched.returncode == 1, watched.stdout + watched.stderr
    final = json.loads(watched.stdout.splitlines()[-1])
    assert (final["status"], final["error"]) == ("failed", "Cloud Run execution failed")
    assert "exited with code 137" in final["inference"]["errorDetails"]
    world.find(rf"webhook  generation\.failed +{generation} \(demo-video\) error: .*verified")

    text = "\n".join(world.lines)
    events_port = int(re.findall(r"event function\s+on http://127\.0\.0\.1:(\d+)/", text)[0])
    receiver_port = int(re.findall(r"receiver on\s+http://127\.0\.0\.1:(\d+)/", text)[0])
    reaper_port = int(re.findall(r"The reaper \(http://127\.0\.0\.1:(\d+)\)", text)[0])
    relay_port = int(re.findall(r"The relay \(http://127\.0\.0\.1:(\d+)\)", text)[0])
    assert "bridge:" not in text  # no change failed to reach the event function
    assert "TRIPWIRE" not in text

    # The check below can see them while they run: the functions and the emulator's JVM.
    for port in (world.port, events_port, reaper_port, relay_port):
        assert len(processes_using(port)) >= 1, port
    assert any("java" in cmd for cmd in processes_using(world.firestore_port))
    assert world.stop(signal.SIGINT) == 0
    ports = (world.port, world.firestore_port, events_port, receiver_port, reaper_port, relay_port)
    for port in ports:
        assert nothing_listens(port), port
        assert processes_using(port) == [], port


def test_run_reuses_a_given_emulator_and_sigterm_stops_only_what_it_started(
    firestore_host: str,
) -> None:
    world = World(env={**os.environ, "FIRESTORE_EMULATOR_HOST": firestore_host})
    try:
        world.wait_for(r"^\s*curl ")
        assert any(firestore_host in line for line in world.lines)

        assert world.stop(signal.SIGTERM) == 0
        assert nothing_listens(world.port)
        # The emulator was not ours to stop.
        assert emulator.is_ready(firestore_host, timeout=5)
    finally:
        world.kill()
