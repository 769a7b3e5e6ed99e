"""Identical polls at once (coalescing) and one key at 500 requests a second (the rate limit)."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .load import HttpClient, Poll, rpc_counts
from .rpc_count import BATCH_GET, diff, reads


@dataclass(frozen=True)
class Burst:
    """``polls`` sent at once, and the BatchGetDocuments calls they cost (one number a burst)."""

    polls: int
    batches: list[int]


def bursts(polls: Sequence[Poll], repeats: int) -> Burst:
    """Send every poll at the same moment (a barrier), ``repeats`` times; count the batches."""
    barrier = threading.Barrier(len(polls))
    clients = [HttpClient() for _ in polls]

    def send(index: int) -> int:
        barrier.wait()
        status, _ = clients[index].post(polls[index])
        return status

    counter = HttpClient()
    batches = []
    try:
        with ThreadPoolExecutor(len(polls)) as pool:
            for _ in range(repeats):
                before = rpc_counts(counter, polls[0].base_url)
                statuses = list(pool.map(send, range(len(polls))))
                if set(statuses) != {200}:
                    raise RuntimeError(f"a burst was answered {Counter(statuses)}")
                after = rpc_counts(counter, polls[0].base_url)
                batches.append(diff(after, before).get(f"calls.{BATCH_GET}", 0))
    finally:
        for client in [*clients, counter]:
            client.close()
    return Burst(len(polls), batches)


@dataclass(frozen=True)
class Flood:
    """One key sending at a fixed rate for a while, open loop: what it got and what it cost."""

    target_rate: float
    seconds: float
    statuses: Counter[int]
    reads: int
    batches: int

    @property
    def sent_rate(self) -> float:
        return sum(self.statuses.values()) / self.seconds


def flood(poll: Poll, rate: float, seconds: float, senders: int = 48) -> Flood:
    """Requests at ``rate`` a second for ``seconds``, each on its schedule whatever the answers."""
    total = int(rate * seconds)
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    next_index = iter(range(total))
    counter = HttpClient()
    before = rpc_counts(counter, poll.base_url)
    started = time.perf_counter()

    def sender() -> None:
        client = HttpClient()
        try:
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    return
                delay = started + index / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                try:
                    status, _ = client.post(poll)
                except OSError:
                    status = 0
                with lock:
                    statuses[status] += 1
        finally:
            client.close()

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    elapsed = time.perf_counter() - started
    cost = diff(rpc_counts(counter, poll.base_url), before)
    counter.close()
    return Flood(rate, elapsed, statuses, reads(cost), cost.get(f"calls.{BATCH_GET}", 0))


def render_abuse(coalesced: Burst, distinct: Burst, limited: Flood, unlimited: Flood) -> list[str]:
    def spread(values: list[int]) -> str:
        return f"{statistics.median(values):g} (min {min(values)}, max {max(values)})"

    lines = [
        "| burst | polls at once | BatchGetDocuments per burst, median of "
        f"{len(coalesced.batches)} |",
        "|---|---|---|",
        f"| identical (one key, same ids) | {coalesced.polls} | {spread(coalesced.batches)} |",
        f"| distinct generations and keys | {distinct.polls} | {spread(distinct.batches)} |",
        "",
        "| one key, open loop | asked / sent per s | 200 | 429 | other | Firestore reads "
        "| BatchGets |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, run in (("limit on (defaults)", limited), ("limit off", unlimited)):
        ok, limited_count = run.statuses.get(200, 0), run.statuses.get(429, 0)
        other = sum(run.statuses.values()) - ok - limited_count
        lines.append(
            f"| {label}, {run.seconds:.1f} s | {run.target_rate:g} / {run.sent_rate:.0f} | {ok} "
            f"| {limited_count} | {other} | {run.reads} | {run.batches} |"
        )
    return lines
