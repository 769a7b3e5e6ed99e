"""The local world's reaper: a Cloud Run stand-in, and `reap_stalled_jobs` served and called."""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffio_progress.functions.config import CLOUD_RUN_EMULATOR_HOST, REAPER_MIN_AGE_SECONDS

from . import emulator
from .cloud_run_standin import CloudRunStandIn
from .processes import NotServing, start_function, stop_group, wait_until_serving

# Cloud Scheduler calls the deployed reaper every minute; the local world is quicker.
DEFAULT_PERIOD = 15.0
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class WorldReaper:
    standin: str  # host:port of the Cloud Run stand-in
    url: str  # where reap_stalled_jobs is served
    period: float


def start_standin(stack: ExitStack) -> CloudRunStandIn:
    """The Cloud Run stand-in, stopped when ``stack`` closes."""
    standin = CloudRunStandIn().start()
    stack.callback(standin.stop)
    return standin


def start_reaper(
    stack: ExitStack,
    env: dict[str, str],
    standin: CloudRunStandIn,
    host: str,
    period: float,
    say: Callable[[str], None],
) -> WorldReaper:
    """Serve `reap_stalled_jobs` and call it every ``period`` seconds until ``stack`` closes.

    Stages are reaped as soon as their execution is dead (no minimum age, unless
    the environment sets one), so a killed worker's stage fails within one period.
    """
    reaper_env = {**env, CLOUD_RUN_EMULATOR_HOST: standin.host_port}
    reaper_env.setdefault(REAPER_MIN_AGE_SECONDS, "0")
    url = serve_on_schedule(stack, "reap_stalled_jobs", reaper_env, host, period, say, _reaped)
    return WorldReaper(standin.host_port, url, period)


def serve_on_schedule(
    stack: ExitStack,
    target: str,
    env: dict[str, str],
    host: str,
    period: float,
    say: Callable[[str], None],
    report: Callable[[dict[str, Any]], str | None],
) -> str:
    """Serve main.py's ``target`` and POST to it every ``period`` seconds until ``stack``
    closes, as Cloud Scheduler would; its URL. ``report`` makes an answer a line, or None."""
    port = emulator.free_port(host)
    name = target.split("_")[0]
    log = stack.enter_context(
        tempfile.NamedTemporaryFile("w", prefix=f"diffio-{name}-", suffix=".log")
    )
    process = start_function(target, ROOT / "main.py", port, env=env, stdout=log, host=host)
    stack.callback(stop_group, process)
    url = f"http://{host}:{port}"
    stop = threading.Event()
    what = {"reap": "reaper", "relay": "relay"}.get(name, target)
    caller = threading.Thread(
        target=call_every,
        args=(process, url, period, stop, say, what, report),
        name=what,
        daemon=True,
    )
    stack.callback(caller.join, 10)
    stack.callback(stop.set)
    caller.start()
    return url


def _reaped(summary: dict[str, Any]) -> str | None:
    if summary.get("failed"):
        return f"Reaper: {summary['failed']} dead worker(s); their stages are now failed."
    return None


def call_every(
    process: subprocess.Popen[bytes],
    url: str,
    period: float,
    stop: threading.Event,
    say: Callable[[str], None],
    what: str,
    report: Callable[[dict[str, Any]], str | None],
) -> None:
    """What Cloud Scheduler does: POST to ``what`` (the reaper, the relay), now and then every
    ``period``; ``report`` turns an answer into a line worth saying, or None.

    On a fixed rate, as a schedule is: a call's own duration does not stretch the period.
    """
    try:
        wait_until_serving(process, url, 60)
    except NotServing as failed:
        if not stop.is_set():
            say(f"The {what} {failed}; it will not run.")
        return
    complained = False
    next_call = time.monotonic()
    while not stop.is_set():
        try:
            request = urllib.request.Request(url, data=b"", method="POST")
            with urllib.request.urlopen(request, timeout=60) as response:
                summary = json.loads(response.read())
            complained = False
            line = report(summary)
            if line:
                say(line)
        except (OSError, ValueError) as error:
            if not complained and not stop.is_set():
                say(f"The {what} did not answer ({error}); trying again every {period:g} s.")
            complained = True
        # A call that outlasted the period is followed at once, once: no burst to catch up.
        next_call = max(next_call + period, time.monotonic())
        stop.wait(next_call - time.monotonic())


def instructions(reaper: WorldReaper, simulate: str, project: str, key_id: str) -> str:
    """What to paste to kill a worker and see the reaper fail its stage (and its event arrive)."""
    return f"""
The reaper ({reaper.url}) runs every {reaper.period:g} s against a Cloud Run stand-in at
{reaper.standin}. Kill a worker halfway; its stage turns failed on the reaper's next run:
  {simulate} --project-id {project} --kill-stage inference --api-key-id {key_id}
"""
