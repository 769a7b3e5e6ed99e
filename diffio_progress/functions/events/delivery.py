"""One sender at a time: claim each undelivered event, send it, mark it (events-contract.md §4).

Events go out in rank order, one at a time, each only under this call's lease.
Finding an event under another call's live lease, the call waits a moment for
it (a normal delivery takes milliseconds), then gives up: it sends nothing more
for the generation and fails, so Eventarc calls it again later. So a racing
write never sends an event twice, and an endpoint never sees a higher-ranked
event before a lower one. A lease outlives the delivery's deadline by a margin:
a call that dies mid-delivery strands nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from diffio_progress.core.events import Target

from .outbox import BUSY, CLAIMED, Claim, Outbox, OutboxEvent
from .sinks import Sink, SinkSession

log = logging.getLogger("diffio_progress.events")

# Beyond the sink's deadline, a lease covers marking the event and clock skew.
LEASE_MARGIN_SECONDS = 20.0
# How long a call waits for another's live lease before it answers "retry later".
CLAIM_PATIENCE_SECONDS = 2.0
_FIRST_PAUSE, _LONGEST_PAUSE = 0.05, 0.5


class DeliveryFailed(Exception):
    """A delivery failed; the call must fail so that Eventarc retries it."""

    # Logged with the failure: what the call recorded, and how long the oldest event still
    # undelivered has waited (monitoring/'s log metrics count and alert on them).
    fields: dict[str, Any] = {}


class LeaseHeld(DeliveryFailed):
    """Another call is delivering this generation's next event: retried later, nothing sent."""


@dataclass
class Deliverer:
    """Delivers a generation's undelivered events under leases; safe to share across threads."""

    outbox: Outbox
    sink: Sink
    lease_margin_seconds: float = LEASE_MARGIN_SECONDS
    patience_seconds: float = CLAIM_PATIENCE_SECONDS
    sleep: Callable[[float], None] = time.sleep

    @property
    def lease_seconds(self) -> float:
        return self.sink.deadline_seconds + self.lease_margin_seconds

    def deliver(
        self, target: Target, waiting: list[OutboxEvent], api_key_id: str, by: str
    ) -> list[str]:
        """Send ``waiting`` (in rank order) as ``by`` (the CloudEvent id); the types sent.

        Raises ``LeaseHeld`` or ``DeliveryFailed``: the call must fail and be retried.
        """
        session: SinkSession | None = None
        delivered = []
        for stale in waiting:
            claim = self._claim(target, stale.event_type, by)
            if claim.state == BUSY:
                raise LeaseHeld(f"{stale.event_type} is being delivered by another call")
            if claim.state != CLAIMED or claim.event is None:
                continue  # delivered meanwhile by another call
            event = claim.event
            try:
                session = session or self.sink.session(api_key_id)
                if time.monotonic() + self.sink.deadline_seconds > claim.expires:
                    # Too slow getting here: another call may claim it while this one sends.
                    raise DeliveryFailed(f"the lease on {event.event_type} ran short")
                delivery = session.send(event)
            except Exception:  # a process that is killed releases nothing: its lease expires
                self._release(target, event)
                raise
            self.outbox.mark(
                target.api_project_id,
                target.generation_id,
                event,
                list(delivery.delivered_to),
                delivery.ok,
            )
            if not delivery.ok:
                raise DeliveryFailed(*delivery.failures)
            delivered.append(event.event_type)
        return delivered

    def _claim(self, target: Target, event_type: str, by: str) -> Claim:
        """Claim ``event_type``, waiting up to ``patience_seconds`` for a live lease to end."""
        waited, pause = 0.0, _FIRST_PAUSE
        while True:
            claim = self.outbox.claim(
                target.api_project_id, target.generation_id, event_type, by, self.lease_seconds
            )
            if claim.state != BUSY or waited >= self.patience_seconds:
                return claim
            self.sleep(pause)
            waited += pause
            pause = min(pause * 2, _LONGEST_PAUSE)

    def _release(self, target: Target, event: OutboxEvent) -> None:
        try:
            self.outbox.release(target.api_project_id, target.generation_id, event.event_type)
        except Exception:  # the lease then simply expires
            log.warning("could not release the lease on %s", event.event_type)
