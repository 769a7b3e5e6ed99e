"""What a sink is: per call, a session for one API key that sends one event at a time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .outbox import OutboxEvent


@dataclass(frozen=True)
class Delivery:
    """How sending one event went.

    ``delivered_to`` lists the endpoints reached (the direct sink's ids; empty
    for Svix, which fans out itself). ``failures`` are reasons safe to log:
    any failure makes the call fail, so Eventarc retries it.
    """

    delivered_to: tuple[str, ...] = ()
    failures: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.failures


class SinkSession(Protocol):
    def send(self, event: OutboxEvent) -> Delivery: ...


class Sink(Protocol):
    name: str

    @property
    def deadline_seconds(self) -> float:
        """The longest one ``send`` may take: a delivery's lease outlasts it by a margin."""
        ...

    def session(self, api_key_id: str) -> SinkSession:
        """Get ready to send events of ``api_key_id`` (one Svix application, or its endpoints)."""
        ...

    def close(self) -> None:
        """Release connections kept open between calls."""
        ...
