"""`run`: a live local world: emulator, demo data, the function, and a generation in motion."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TextIO

from google.cloud import firestore

from diffio_progress.functions.config import (
    CLOUD_RUN_EMULATOR_HOST,
    FIRESTORE_EMULATOR_HOST,
    GOOGLE_CLOUD_PROJECT,
    WEBHOOK_ALLOW_PRIVATE_URLS,
    WEBHOOK_RETRY_SCHEDULE,
    WEBHOOK_SECRETS_KMS_KEY,
    WEBHOOK_SECRETS_LOCAL_KEY,
    WEBHOOK_SINK,
)
from diffio_progress.functions.secret_box import new_local_key

from . import emulator, world_reaper, world_relay
from .demo import Demo, seed_demo
from .event_world import start_event_world
from .executions import Executions, StandInExecutions
from .firestore_connection import LOCAL_PROJECT, CliError, firestore_errors
from .processes import NotServing, start_function, stop_group, wait_until_serving
from .simulator import Pace, Stopped, simulate
from .world_text import ready_text

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FIRESTORE_PORT = 8181
DEFAULT_PORT = 8080
HOST = "127.0.0.1"


class Shutdown(Exception):
    """SIGTERM arrived: leave the same way as on Ctrl-C."""


@dataclass(frozen=True)
class WorldOptions:
    port: int = DEFAULT_PORT
    firestore_port: int | None = None
    project: str = LOCAL_PROJECT
    pace: Pace = Pace()
    reaper_period: float = world_reaper.DEFAULT_PERIOD
    relay_period: float = world_relay.DEFAULT_PERIOD


def firestore_port_from_config(root: Path = ROOT) -> int:
    """``emulators.firestore.port`` of firebase.json, the port firebase-tools would use too."""
    try:
        config = json.loads((root / "firebase.json").read_text())
        return int(config["emulators"]["firestore"]["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_FIRESTORE_PORT


def suggest_port(port: int) -> int:
    """A free port near ``port`` (easy to type), else any free port."""
    for candidate in range(port + 1, port + 50):
        if candidate < 65536 and emulator.port_is_free(HOST, candidate):
            return candidate
    return emulator.free_port(HOST)


def check_port(port: int, what: str, flag: str) -> None:
    if not emulator.port_is_free(HOST, port):
        raise CliError(
            f"Port {port} ({what}) is busy; try another: "
            f"python -m diffio_progress run {flag} {suggest_port(port)}"
        )


def wait_for_function(process: subprocess.Popen[bytes], url: str, log_path: str) -> None:
    try:
        wait_until_serving(process, url, 60)
    except NotServing as failed:
        tail = Path(log_path).read_text(errors="replace").strip().splitlines()[-5:]
        raise CliError(f"The function {failed}:\n" + "\n".join(tail)) from None


def run(options: WorldOptions, out: TextIO) -> int:
    """Start everything, print how to use it, wait for Ctrl-C or SIGTERM, stop everything."""
    started = time.monotonic()
    say = _printer(out)
    reuse = os.environ.get(FIRESTORE_EMULATOR_HOST)
    firestore_port = options.firestore_port or firestore_port_from_config()
    _preflight(reuse, firestore_port, options.port)
    stack = ExitStack()
    previous = signal.signal(signal.SIGTERM, _on_term)
    # Installed explicitly: a shell starts background jobs with SIGINT ignored,
    # and Python would then inherit that and never see a Ctrl-C.
    previous_int = signal.signal(signal.SIGINT, _on_term)
    interrupted = False
    try:
        with firestore_errors(options.project):
            _run(options, stack, say, started, reuse, firestore_port)
    except (KeyboardInterrupt, Shutdown):
        interrupted = True
    finally:
        # A second Ctrl-C must not cut the clean-up short and strand a process.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            stack.close()
        finally:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous)
    if interrupted:
        say("Stopped; nothing is left running.")
    return 0


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise Shutdown


def _preflight(reuse: str | None, firestore_port: int, port: int) -> None:
    """Refuse early, before anything starts, in one line the user can act on."""
    if reuse:
        if not emulator.is_ready(reuse, timeout=2):
            raise CliError(
                f"FIRESTORE_EMULATOR_HOST={reuse} does not answer; start that emulator, "
                "or unset the variable to let `run` start one."
            )
    elif not emulator.port_is_free(HOST, firestore_port):
        if emulator.is_ready(f"{HOST}:{firestore_port}", timeout=1):
            raise CliError(
                f"Port {firestore_port} is busy: a Firestore emulator already runs there; reuse it "
                f"with FIRESTORE_EMULATOR_HOST={HOST}:{firestore_port}, or pick another port: "
                f"python -m diffio_progress run --firestore-port {suggest_port(firestore_port)}"
            )
        check_port(firestore_port, "Firestore emulator", "--firestore-port")
    check_port(port, "function", "--port")


def _run(
    options: WorldOptions,
    stack: ExitStack,
    say: Callable[[str], None],
    started: float,
    reuse: str | None,
    firestore_port: int,
) -> None:
    host_port = reuse or f"{HOST}:{firestore_port}"
    standin = world_reaper.start_standin(stack)
    env = {**os.environ, FIRESTORE_EMULATOR_HOST: host_port, GOOGLE_CLOUD_PROJECT: options.project}
    env[CLOUD_RUN_EMULATOR_HOST] = standin.host_port
    # The event function and the relay retry on the same, compressed, schedule.
    env.setdefault(WEBHOOK_RETRY_SCHEDULE, world_relay.LOCAL_SCHEDULE)
    # Signing secrets are stored encrypted, locally under a key made for this run (the
    # webhooks API seals them, the event function opens them).
    if not env.get(WEBHOOK_SECRETS_KMS_KEY):
        env.setdefault(WEBHOOK_SECRETS_LOCAL_KEY, new_local_key())
    # This process's own client (seeding, simulator) talks to the same emulator.
    os.environ[FIRESTORE_EMULATOR_HOST] = host_port
    base_url = f"http://{HOST}:{options.port}/v1"
    url = f"{base_url}/get_generation_progress"
    log = stack.enter_context(
        tempfile.NamedTemporaryFile("w", prefix="diffio-function-", suffix=".log")
    )
    # The functions boot while the emulator starts: they connect on their first request.
    # Every path of the routing table (firebase.json) behind one address, as deployed;
    # the webhooks API delivers to the local receiver, so private URLs are allowed here.
    api_env = {**env, WEBHOOK_SINK: "direct", WEBHOOK_ALLOW_PRIVATE_URLS: "true"}
    function = start_function(
        None, ROOT / "main.py", options.port, env=api_env, stdout=log, host=HOST
    )
    stack.callback(stop_group, function)
    events = start_event_world(stack, env, HOST, say)
    if reuse:
        say(f"Using the Firestore emulator at {host_port} (FIRESTORE_EMULATOR_HOST).")
    else:
        say(f"Starting the Firestore emulator on {host_port} ...")
        firestore_emulator = emulator.FirestoreEmulator(HOST, firestore_port)
        # Registered before start(): Ctrl-C during start-up must stop it too.
        stack.callback(firestore_emulator.stop)
        try:
            firestore_emulator.start()
        except emulator.EmulatorNotFound as missing:
            raise CliError(str(missing)) from None
        except RuntimeError as failed:
            raise CliError(str(failed).splitlines()[0]) from None
    say(f"Seeding demo data and starting the function on {url} ...")
    db = firestore.Client(project=options.project)
    events.start_bridge(db, stack, say, fresh=not reuse)  # before the demo's writes

    def configure_webhook(key_id: str, key: str) -> None:
        # As a client would: POST /v1/webhooks/configure with the demo key.
        wait_for_function(function, url, log.name)
        events.configure(base_url, key)

    demo = seed_demo(db, datetime.now(UTC), on_key=configure_webhook)
    events.wait_until_serving()  # the bridge retries until it is
    # Started once the poll is served, so that it never delays the ready line.
    reaper = world_reaper.start_reaper(stack, env, standin, HOST, options.reaper_period, say)
    relay_url = world_relay.start_relay(stack, api_env, HOST, options.relay_period, say)

    stop = threading.Event()
    executions = StandInExecutions(standin.host_port, options.project)
    simulation = threading.Thread(
        target=_simulate,
        args=(db, demo, options.pace, stop, say, executions),
        name="simulator",
        daemon=True,
    )
    stack.callback(simulation.join, 10)
    stack.callback(stop.set)
    simulation.start()

    elapsed = time.monotonic() - started
    say(ready_text(demo, url, host_port, options.project, elapsed, events, reaper))
    say(world_relay.instructions(relay_url, options.relay_period))
    while True:
        if function.poll() is not None:
            raise CliError(f"The function stopped unexpectedly (exit code {function.returncode})")
        time.sleep(0.5)


def _simulate(
    db: firestore.Client,
    demo: Demo,
    pace: Pace,
    stop: threading.Event,
    say: Callable[[str], None],
    executions: Executions,
) -> None:
    try:
        status = simulate(
            db,
            demo.live_project,
            demo.live_generation,
            has_video=True,
            pace=pace,
            stop=stop,
            executions=executions,
        )
    except Stopped:
        return
    except Exception as error:  # the world stays up; the user learns why the bars froze
        say(f"The simulator stopped: {type(error).__name__}: {error}")
        return
    say(f"Simulator: {demo.live_generation} is {status}. Ctrl-C stops everything.")


def _printer(out: TextIO) -> Callable[[str], None]:
    lock = threading.Lock()

    def say(text: str) -> None:
        with lock:
            out.write(text + "\n")
            out.flush()

    return say
