"""One sender at a time, in rank order: claim an event, attempt its due deliveries, mark them.

The event function (its fast path) and the relay both deliver through this.
A generation's events are taken in rank order; an endpoint is sent an event
only once every lower-ranked delivery to it is settled (delivered, failed for
good or skipped), so it never sees a higher-ranked event first (§1.3). Each
event is attempted only under this sender's lease; an event under another
sender's live lease ends the generation's turn (nothing higher is sent), and
the holder or the relay takes it from there. A failed attempt is scheduled
(core.deliveries), never raised: delivery is ours, not Eventarc's. A lease
outlives the delivery's deadline by a margin: a sender that dies strands nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from diffio_progress.core.deliveries import (
    DELIVERED,
    FAILED,
    Attempt,
    Delivery,
    after_attempt,
    attempt_trigger,
    outcome_of,
    plan,
    skipped,
)
from diffio_progress.core.retry_schedule import Schedule, retry_after

from .marks import Attempted, Marker
from .outbox import Outbox
from .outbox_event import OutboxEvent
from .sinks import Sink, SinkSession

log = logging.getLogger("diffio_progress.events")

# Beyond the sink's deadline, a lease covers marking the event and clock skew.
LEASE_MARGIN_SECONDS = 20.0
# How long the event function waits for another sender's live lease before leaving it.
CLAIM_PATIENCE_SECONDS = 2.0
_FIRST_PAUSE, _LONGEST_PAUSE = 0.05, 0.5


@dataclass
class Tally:
    """What a sender did: deliveries taken up, and how their attempts ended."""

    due: int = 0
    delivered: int = 0
    failed: int = 0
    retried: int = 0
    sent: list[str] = field(default_factory=list)  # event types attempted
    reached: list[str] = field(default_factory=list)  # event types delivered to an endpoint
    left: list[str] = field(default_factory=list)  # event types left to another sender

    def count(self, attempt: Attempted) -> None:
        self.due += 1
        if attempt.result.skipped:
            return
        outcome = outcome_of(attempt.after)
        if outcome == DELIVERED:
            self.delivered += 1
        elif outcome == FAILED:
            self.failed += 1
        else:
            self.retried += 1

    def add(self, other: Tally) -> None:
        self.due += other.due
        self.delivered += other.delivered
        self.failed += other.failed
        self.retried += other.retried

    def counts(self) -> dict[str, int]:
        return {
            "due": self.due,
            "delivered": self.delivered,
            "failed": self.failed,
            "retried": self.retried,
        }


@dataclass
class Deliverer:
    """Delivers generations' due deliveries under leases; safe to share across threads."""

    outbox: Outbox
    sink: Sink
    marker: Marker
    schedule: Schedule
    clock: Callable[[], datetime]
    lease_margin_seconds: float = LEASE_MARGIN_SECONDS
    patience_seconds: float = CLAIM_PATIENCE_SECONDS
    sleep: Callable[[float], None] = time.sleep

    @property
    def lease_seconds(self) -> float:
        return self.sink.deadline_seconds + self.lease_margin_seconds

    def lease(self, by: str) -> tuple[datetime, str]:
        """A lease taken now (the event function takes it in the event's creating write)."""
        return self.clock() + timedelta(seconds=self.lease_seconds), by

    def deliver(
        self,
        events: list[OutboxEvent],
        by: str,
        trigger: str,
        session: SinkSession | None = None,
        held: frozenset[str] = frozenset(),
    ) -> Tally:
        """Attempt the due deliveries of one generation's ``events`` (in rank order).

        ``held``: event types whose lease this sender already holds (it created
        them leased); each is released if this sender does not mark it.
        """
        tally = Tally()
        current: dict[str, Mapping[str, Delivery]] = {e.event_type: e.deliveries for e in events}
        unmarked = set(held)
        try:
            for event in events:
                lower = [current[e.event_type] for e in events if e.rank < event.rank]
                targets, put_off = plan(event.deliveries, lower, self.clock())
                if not targets and not put_off:
                    continue
                if event.event_type not in held:
                    claimed = self._claim(event, by)
                    if claimed is None:
                        tally.left.append(event.event_type)
                        return tally  # another sender has it: nothing higher goes first
                    event = claimed
                    targets, put_off = plan(event.deliveries, lower, self.clock())
                unmarked.add(event.event_type)
                api_key_id = event.api_key_id
                if api_key_id is None:
                    continue
                session = session or self.sink.session(api_key_id)
                try:
                    deliveries = self._attempt(event, targets, put_off, session, trigger, tally)
                except _LeaseLost:
                    unmarked.discard(event.event_type)  # the lease is another sender's now
                    deliveries = None
                if deliveries is None:
                    tally.left.append(event.event_type)
                    return tally
                unmarked.discard(event.event_type)
                current[event.event_type] = deliveries
        finally:
            for event in events:
                if event.event_type in unmarked:
                    self._release(event)
        return tally

    def _attempt(
        self,
        event: OutboxEvent,
        targets: list[str],
        put_off: dict[str, Delivery],
        session: SinkSession,
        trigger: str,
        tally: Tally,
    ) -> dict[str, Delivery] | None:
        """Send ``event`` to ``targets`` and mark it; None when it could not be marked."""
        ends = event.lease_until
        if ends is None or self.clock() + timedelta(seconds=self.sink.deadline_seconds) > ends:
            return None  # too slow getting here: another sender may claim it while this one sends
        results = session.send(event, targets) if targets else []
        now = self.clock()
        deliveries = {**event.deliveries, **put_off}
        attempted = []
        for result in results:
            before = event.deliveries[result.endpoint_id]
            if result.skipped:
                after = skipped()
            else:
                not_before = retry_after(result.http_status, result.retry_after, now)
                outcome = Attempt(result.ok, result.http_status, not_before)
                after = after_attempt(before, outcome, now, self.schedule)
            deliveries[result.endpoint_id] = after
            attempted.append(
                Attempted(result, before, after, attempt_trigger(before, trigger), now)
            )
        if not self.marker.mark(event, deliveries, attempted):
            raise _LeaseLost
        tally.sent.append(event.event_type)
        if any(a.after.status == DELIVERED and not a.result.skipped for a in attempted):
            tally.reached.append(event.event_type)
        for attempt in attempted:
            tally.count(attempt)
            change = session.health_change(attempt.result, now)
            if change:
                self.marker.health(attempt.result.endpoint_id, change)
        return deliveries

    def _claim(self, event: OutboxEvent, by: str) -> OutboxEvent | None:
        """Claim ``event``, waiting up to ``patience_seconds`` for a live lease to end."""
        waited, pause = 0.0, _FIRST_PAUSE
        while True:
            claimed = self.outbox.claim(event, by, self.lease_seconds)
            if claimed is not None or waited >= self.patience_seconds:
                return claimed
            self.sleep(pause)
            waited += pause
            pause = min(pause * 2, _LONGEST_PAUSE)

    def _release(self, event: OutboxEvent) -> None:
        try:
            self.outbox.release(event)
        except Exception:  # the lease then simply expires
            log.warning("could not release the lease on %s", event.event_id)


class _LeaseLost(Exception):
    """The mark found the event written since the claim: its lease had run out and moved on."""
