"""Load for the benchmark: keep-alive HTTP clients, interleaved latency samples, throughput."""

from __future__ import annotations

import http.client
import json
import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .rpc_count import COUNTS_PATH

PATH = "/v1/get_generation_progress"


@dataclass(frozen=True)
class Poll:
    """One request: where it goes, its body and the API key."""

    base_url: str
    body: bytes
    key: str
    # The X-Forwarded-For a front end would append: the budget benchmarks pick the address.
    forwarded_for: str | None = None


# Builds the i-th request of a kind (the generation is picked from i).
PollFactory = Callable[[int], Poll]


class HttpClient:
    """One keep-alive connection per server, as a polling client would hold."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._connections: dict[str, http.client.HTTPConnection] = {}

    def _connection(self, base_url: str) -> http.client.HTTPConnection:
        conn = self._connections.get(base_url)
        if conn is None:
            parts = urlsplit(base_url)
            host = parts.hostname or "127.0.0.1"
            conn = http.client.HTTPConnection(host, parts.port, timeout=self.timeout)
            self._connections[base_url] = conn
        return conn

    def post(self, poll: Poll) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json", "X-Api-Key": poll.key}
        if poll.forwarded_for is not None:
            headers["X-Forwarded-For"] = poll.forwarded_for
        return self._request(poll.base_url, "POST", PATH, poll.body, headers)

    def get_json(self, base_url: str, path: str) -> Any:
        status, body = self._request(base_url, "GET", path, None, {})
        return json.loads(body)

    def _request(
        self, base_url: str, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        for attempt in (1, 2):
            conn = self._connection(base_url)
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # The server closed an idle keep-alive connection: redial once.
                conn.close()
                self._connections.pop(base_url, None)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()


def rpc_counts(client: HttpClient, base_url: str) -> dict[str, int]:
    counts: dict[str, int] = client.get_json(base_url, COUNTS_PATH)
    return counts


@dataclass
class Samples:
    """Latencies (seconds) of successful requests, and the failures."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) if self.latencies else float("nan")


def timed(client: HttpClient, poll: Poll, samples: Samples) -> None:
    started = time.perf_counter()
    try:
        status, _ = client.post(poll)
    except OSError:
        samples.errors += 1
        return
    elapsed = time.perf_counter() - started
    if status == 200:
        samples.latencies.append(elapsed)
    else:
        samples.errors += 1


def interleaved_latency(kinds: dict[str, PollFactory], rounds: int) -> dict[str, Samples]:
    """One client, one request of each kind per round, the kinds' order rotating.

    Rotation keeps any drift (JIT warm-up in the emulator, GC) spread evenly.
    """
    client = HttpClient()
    names = list(kinds)
    samples = {name: Samples() for name in names}
    try:
        for i in range(rounds):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                timed(client, kinds[name](i), samples[name])
    finally:
        client.close()
    return samples


@dataclass
class Throughput:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0  # CPU seconds the serving processes used meanwhile
    server_rss: int = 0  # bytes the serving processes held at the end
    samples: Samples = field(default_factory=Samples)  # every answered request's latency

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_request(self) -> float:
        return self.server_cpu / self.requests if self.requests else float("nan")


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (gunicorn's worker), Linux only."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        found.append(current)
        pending.extend(int(c) for c in children)
    return found


def process_tree_cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children (gunicorn's worker), Linux only."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for member in _process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def process_tree_rss(pid: int) -> int:
    """Resident memory, in bytes, of ``pid`` and its children, Linux only."""
    total = 0
    for member in _process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        total += next(
            int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")
        )
    return total


def closed_loop(factory: PollFactory, clients: int, seconds: float) -> Throughput:
    """``clients`` threads, each sending its next request as soon as the last one answers."""
    stop = threading.Event()
    results = [Samples() for _ in range(clients)]

    def run(index: int) -> None:
        client = HttpClient()
        i = index * 7919  # spread the clients over the generations
        try:
            while not stop.is_set():
                timed(client, factory(i), results[index])
                i += 1
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(30)
    elapsed = time.perf_counter() - started
    merged = Samples([s for r in results for s in r.latencies], sum(r.errors for r in results))
    return Throughput(
        requests=len(merged.latencies), errors=merged.errors, seconds=elapsed, samples=merged
    )


def interleaved_throughput(
    kinds: dict[str, PollFactory],
    clients: int,
    seconds: float,
    rounds: int,
    server_pid: dict[str, int],
) -> dict[str, Throughput]:
    """Alternate the kinds in short runs, so all see the same machine conditions."""
    totals = {name: Throughput() for name in kinds}
    names: Sequence[str] = list(kinds)
    for r in range(rounds):
        order = list(names[r % len(names) :]) + list(names[: r % len(names)])
        for name in order:
            cpu_before = process_tree_cpu(server_pid[name])
            run = closed_loop(kinds[name], clients, seconds)
            totals[name].server_cpu += process_tree_cpu(server_pid[name]) - cpu_before
            totals[name].requests += run.requests
            totals[name].errors += run.errors
            totals[name].seconds += run.seconds
    return totals
