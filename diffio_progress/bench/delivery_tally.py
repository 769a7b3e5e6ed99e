"""What a delivery benchmark shows: recorded, delivered, lost, duplicated, out of order, latency.

Lost = recorded, never answered 2xx; duplicates = one ``eventId`` answered 2xx more
than once; out of order = an endpoint saw a higher-ranked event of a generation
before a lower one; latency = from the write that changed the status to the 2xx.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.core.events import RANKS

from .faults import FlakyReceiver, Receipt


@dataclass
class Run:
    """What one scenario wrote and when: (generation, event type) -> the write's time."""

    marks: dict[tuple[str, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def mark(self, generation: str, event_type: str) -> None:
        with self.lock:
            self.marks.setdefault((generation, event_type), time.monotonic())


def tally(
    webhooks: firestore.Client,
    project: str,
    generations: list[str],
    receiver: FlakyReceiver,
    run: Run,
) -> dict[str, Any]:
    receipts = sorted(receiver.receipts, key=lambda r: r.at)
    copies = Counter(r.event_id for r in receipts)
    first: dict[str, Receipt] = {}
    for receipt in receipts:
        first.setdefault(receipt.event_id, receipt)
    recorded = lost = out_of_order = ended = 0
    latencies = []
    for generation in generations:
        generation_doc = webhooks.document(*paths.generation(project, generation))
        outbox = generation_doc.collection("events").get()
        events = {s.id: (s.to_dict() or {}).get("eventId") for s in outbox}
        recorded += len(events)
        ended += bool({"generation.completed", "generation.failed"} & set(events))
        lost += sum(1 for event_id in events.values() if event_id not in first)
        seen = sorted(
            (r for r in first.values() if r.generation_id == generation), key=lambda r: r.at
        )
        ranks = [RANKS[r.event_type] for r in seen]
        out_of_order += sum(1 for a, b in zip(ranks, ranks[1:], strict=False) if b < a)
        for receipt in seen:
            written = run.marks.get((generation, receipt.event_type))
            if written is not None:
                latencies.append(receipt.at - written)
    return {
        "generations": len(generations),
        "ended": ended,
        "recorded": recorded,
        "delivered": len(first),
        "lost": lost,
        "duplicates": sum(n - 1 for n in copies.values()),
        "outOfOrder": out_of_order,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": percentile(latencies, 0.99),
    }


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
