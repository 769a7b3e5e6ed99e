"""What made-up API keys cost: reads past the address budgets, and memory of refused keys.

``python -m diffio_progress.bench.budgets`` starts its own emulator and the
deployed handler (counting its RPCs), seeds one generation, then sends made-up
keys for it: one at a time from many addresses of one IPv6 /64; all at once
from one address; with fewer X-Forwarded-For entries than trusted hops; and a
flood with the address budget off, measuring the server's resident memory per
refused key. Loopback only.
"""

from __future__ import annotations

import argparse
import os
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, replace

from google.cloud import firestore

from diffio_progress.tools import emulator

from .harness import PROJECT, ROOT, poll_of, seed, served
from .load import HttpClient, Poll, process_tree_rss, rpc_counts
from .rpc_count import BATCH_GET, diff, reads

# The refusal memory's bound (admission.py): a long flood fills it to this many entries.
REMEMBERED = 100_000


@dataclass(frozen=True)
class Cost:
    """What a run of made-up keys was answered, and the Firestore reads it caused."""

    label: str
    statuses: Counter[int]
    reads: int
    lookups: int

    def line(self) -> str:
        answers = ", ".join(f"{n} x {status}" for status, n in sorted(self.statuses.items()))
        return f"| {self.label} | {answers} | {self.reads} | {self.lookups} |"


def made_up(poll: Poll, forwarded_for: str | None) -> Poll:
    return replace(poll, key=f"made-up-{secrets.token_urlsafe(24)}", forwarded_for=forwarded_for)


def cost(label: str, polls: list[Poll], at_once: bool) -> Cost:
    """Send ``polls`` one after another, or all at the same moment (a barrier)."""
    counter = HttpClient()
    before = rpc_counts(counter, polls[0].base_url)
    if at_once:
        barrier = threading.Barrier(len(polls))

        def send(poll: Poll) -> int:
            client = HttpClient(timeout=60)
            barrier.wait()
            try:
                return client.post(poll)[0]
            finally:
                client.close()

        with ThreadPoolExecutor(len(polls)) as pool:
            statuses = Counter(pool.map(send, polls))
    else:
        statuses = Counter(counter.post(poll)[0] for poll in polls)
    spent = diff(rpc_counts(counter, polls[0].base_url), before)
    counter.close()
    return Cost(label, statuses, reads(spent), spent.get(f"calls.{BATCH_GET}", 0))


def flood_memory(poll: Poll, pid: int, count: int, clients: int = 8) -> tuple[int, int]:
    """Resident bytes of the server before and after ``count`` refused made-up keys."""
    warm = [made_up(poll, "192.0.2.1") for _ in range(200)]
    cost("warm-up", warm, at_once=False)
    before = process_tree_rss(pid)
    remaining = iter(range(count))
    lock = threading.Lock()

    def sender(index: int) -> None:
        client = HttpClient()
        try:
            while True:
                with lock:
                    n = next(remaining, None)
                if n is None:
                    return
                client.post(made_up(poll, f"192.0.2.{n % 250 + 1}"))
        finally:
            client.close()

    threads = [threading.Thread(target=sender, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return before, process_tree_rss(pid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffio_progress.bench.budgets")
    parser.add_argument("--spread", type=int, default=300, help="keys from one /64")
    parser.add_argument("--at-once", type=int, default=200, help="keys from one address at once")
    parser.add_argument("--flood", type=int, default=10_000, help="refused keys for memory")
    parser.add_argument("--threads", type=int, default=32, help="gunicorn's, as deployed")
    args = parser.parse_args(argv)
    env = {"GOOGLE_CLOUD_PROJECT": PROJECT, "WORKERS": "1", "THREADS": str(args.threads)}
    source = ROOT / "diffio_progress" / "bench" / "counted_function.py"
    with ExitStack() as stack:
        emu = stack.enter_context(emulator.FirestoreEmulator())
        env["FIRESTORE_EMULATOR_HOST"] = emu.host_port
        os.environ["FIRESTORE_EMULATOR_HOST"] = emu.host_port
        db = firestore.Client(project=PROJECT)
        [generation] = seed(db, 1, "budget")

        def server(**extra: str) -> tuple[Poll, int]:
            url, pid = stack.enter_context(
                served("get_generation_progress", source, {**env, **extra})
            )
            return poll_of(url, generation, project=True, floor=False), pid

        deployed, _ = server()  # the defaults: 60 refused keys a minute per address, 1 hop
        behind_balancer, _ = server(TRUSTED_PROXY_HOPS="2")
        unbounded, unbounded_pid = server(
            REFUSED_KEYS_PER_ADDRESS_PER_MINUTE="0", REFUSED_KEY_CACHE_SECONDS="3600"
        )
        runs: list[Callable[[], Cost]] = [
            lambda: cost(
                f"{args.spread} keys, one at a time, each from another address of one /64",
                [made_up(deployed, f"2001:db8:0:64::{n + 1:x}") for n in range(args.spread)],
                at_once=False,
            ),
            lambda: cost(
                f"{args.at_once} keys at once from one address",
                [made_up(deployed, "203.0.113.7") for _ in range(args.at_once)],
                at_once=True,
            ),
            lambda: cost(
                "100 keys, each with its own single X-Forwarded-For entry, 2 trusted hops",
                [made_up(behind_balancer, f"198.51.100.{n + 1}") for n in range(100)],
                at_once=False,
            ),
        ]
        print("| made-up keys (budget: 60 a minute per address) | answers | reads | lookups |")
        print("|---|---|---|---|")
        for run in runs:
            print(run().line(), flush=True)
        before, after = flood_memory(unbounded, unbounded_pid, args.flood)
    per_key = (after - before) / args.flood
    print(
        f"\nrefused-key memory (address budget off): {args.flood} made-up keys, resident "
        f"{before / 2**20:.1f} -> {after / 2**20:.1f} MiB, {per_key:.0f} B per key, "
        f"about {per_key * REMEMBERED / 2**20:.0f} MiB at the {REMEMBERED} remembered"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
