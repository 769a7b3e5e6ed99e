"""The event function's shell: decode, decide, read, compose, record, deliver; one line a call.

Eventarc delivers at least once and in any order, so nothing here trusts the
event's copy of the document: it only decides whether the write could change
the overall status (if not: no read at all), then composes the status from the
current documents exactly as a poll does, and records forward-only events.
Recording is Eventarc's job: only a failure to record fails the call. Delivery
is ours: the fast path attempts at once, and what fails is scheduled for the
relay (delivery-contract.md §1-2), never raised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from diffio_progress.core import paths
from diffio_progress.core.deliveries import EVENT_TRIGGER, PENDING
from diffio_progress.core.errors import StoreUnavailable
from diffio_progress.core.events import Target, as_event_body, is_new, kind_of, may_change_status
from diffio_progress.core.progress import compose
from diffio_progress.core.stages import RESTORED_VIDEO, has_video, stage_names, text_field

from ..caches import LockedCache
from ..clock import utcnow
from ..config import WEBHOOK_MAX_AGE_HOURS, Settings
from ..store import FirestoreStore
from .cloud_event import DocumentWrite, MalformedEvent, decode
from .delivery import Deliverer
from .marks import Marker
from .outbox import NewEvent, Outbox, Recorded, Stored
from .outbox_event import OutboxEvent
from .recording import new_event
from .sinks import Sink, SinkSession

__all__ = ["EventHandler", "Outcome"]

log = logging.getLogger("diffio_progress.events")

# A project's media type never changes (data contract): remember it, read one job less.
_PROJECTS_REMEMBERED = 100_000


@dataclass
class Outcome:
    """How one call went: the one log line it writes."""

    outcome: str
    level: int = logging.INFO
    fields: dict[str, Any] = field(default_factory=dict)


class EventHandler:
    """Handles ``on_generation_written`` CloudEvents; safe to share across threads."""

    def __init__(
        self,
        settings: Settings,
        store: FirestoreStore,
        outbox: Outbox,
        sink: Sink | None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.store = store
        self.outbox = outbox
        self.sink = sink
        self.clock = clock
        self.deliverer = (
            Deliverer(
                outbox,
                sink,
                Marker(outbox.connection, settings.webhook_log_days),
                settings.retry_schedule,
                clock,
            )
            if sink is not None
            else None
        )
        self._video: LockedCache[str, bool] = LockedCache(_PROJECTS_REMEMBERED)

    def __call__(self, event: Any) -> Outcome:
        """Handle one CloudEvent; ``StoreUnavailable`` (nothing recorded) means: retry it."""
        started = time.perf_counter()
        attributes = event.get_attributes()
        context: dict[str, Any] = {
            "ceId": attributes.get("id"),
            "document": attributes.get("document"),
        }
        try:
            outcome = self._handle(event, str(attributes.get("id") or ""))
        except StoreUnavailable as unavailable:
            outcome = Outcome("Firestore unavailable; Eventarc retries", logging.WARNING)
            self._log(outcome, context, started)
            raise unavailable
        self._log(outcome, context, started)
        return outcome

    def close(self) -> None:
        """Release the sink's connections (a deployed instance keeps them for its life)."""
        if self.sink is not None:
            self.sink.close()

    def _log(self, outcome: Outcome, context: dict[str, Any], started: float) -> None:
        fields = {k: v for k, v in {**context, **outcome.fields}.items() if v is not None}
        fields["latencySeconds"] = round(time.perf_counter() - started, 4)
        message = f"event {context['ceId']}: {outcome.outcome}"
        log.log(outcome.level, message, extra={"fields": {"outcome": outcome.outcome, **fields}})

    def _handle(self, event: Any, ce_id: str) -> Outcome:
        try:
            write = decode(event)
        except MalformedEvent as malformed:
            # Acknowledged: a retry would fail the same way, forever.
            return Outcome(f"malformed event acknowledged: {malformed}", logging.WARNING)
        expired = self._expired(write)
        if expired is not None:
            return expired
        if not may_change_status(write.target, write.before, write.after):
            return Outcome("cannot change the status; nothing read")
        return self._record_and_deliver(write.target, ce_id)

    def _expired(self, write: DocumentWrite) -> Outcome | None:
        """Give up on an event Eventarc has retried for longer than WEBHOOK_MAX_AGE_HOURS.

        0 means never give up. An event without a time cannot be judged: handled.
        """
        hours = self.settings.webhook_max_age_hours
        if not hours or write.time is None:
            return None
        moment = write.time if write.time.tzinfo else write.time.replace(tzinfo=UTC)
        if self.clock() - moment <= timedelta(hours=hours):
            return None
        return Outcome(
            f"given up: its time {moment.isoformat()} is older than "
            f"{WEBHOOK_MAX_AGE_HOURS}={hours:g}",
            logging.ERROR,
        )

    def _record_and_deliver(self, target: Target, ce_id: str) -> Outcome:
        project_id, generation_id = target.api_project_id, target.generation_id
        docs = self._read(project_id, generation_id)
        project, generation = docs.project, docs.generation
        if project is None or generation is None:
            missing = "project" if project is None else "generation"
            return Outcome(f"{missing} document missing; acknowledged", logging.WARNING)
        composed = compose(generation_id, project_id, project, docs.jobs, None, generation)
        own_jobs = [docs.jobs.get(stage) for stage in stage_names(has_video(project))]
        # Only the generation's creation gets past may_change_status without a stage.
        body = as_event_body(composed, own_jobs, created=target.stage is None)
        session, new = self._new_event(target, body, generation, docs.outbox)
        lease = None
        if self.deliverer is not None and new is not None and PENDING in _statuses(new):
            lease = self.deliverer.lease(ce_id)  # taken by the creating write itself
        recorded = self.outbox.record(docs.outbox, new, lease)
        fields: dict[str, Any] = {
            "generationId": generation_id,
            "status": body["status"],
            "recorded": recorded.new.event_type if recorded.new else None,
        }
        held = frozenset({recorded.new.event_type}) if recorded.new and lease else frozenset()
        fields.update(self._deliver(recorded, ce_id, session, held))
        what = f"recorded {recorded.new.event_type}" if recorded.new else "nothing new"
        # A delivery that waits for a retry is the client's trouble, not a failed call.
        level = logging.WARNING if "oldestUndeliveredSeconds" in fields else logging.INFO
        return Outcome(what, level, fields)

    def _new_event(
        self,
        target: Target,
        body: Mapping[str, Any],
        generation: Mapping[str, Any],
        stored: Stored,
    ) -> tuple[SinkSession | None, NewEvent | None]:
        """The event to record, if the status outranks the outbox, and the sink's session
        that named its deliveries (the key's endpoints, read once for the whole call)."""
        kind = kind_of(body["status"])
        if not is_new(kind, stored.present):
            return None, None
        api_key_id = text_field(generation, "apiKeyId", "generation")
        session = None
        if self.sink is not None and api_key_id:
            session = self.sink.session(api_key_id)
        elif self.sink is not None:
            log.warning(
                "generation %s has no apiKeyId: its events are recorded, not delivered",
                target.generation_id,
                extra={"fields": {"generationId": target.generation_id}},
            )
        now = self.clock()
        deliveries = session.deliveries_for(kind.event_type, now) if session else {}
        event = new_event(
            body,
            generation,
            self.outbox.event_ids(),
            now,
            deliveries,
            self.settings.webhook_log_days,
        )
        return session, event

    def _read(self, project_id: str, generation_id: str) -> _Documents:
        """Two batched reads: the project, the generation and its jobs; its outbox."""
        project_path = paths.project(project_id)
        generation_path = paths.generation(project_id, generation_id)
        known = self._video.get(project_id)
        stages = stage_names(known is not False)
        job_paths = {s: paths.job(project_id, generation_id, s) for s in stages}
        docs = self.store.get_documents([project_path, generation_path, *job_paths.values()])
        jobs = {stage: docs[path] for stage, path in job_paths.items()}
        project = docs[project_path]
        if project is None or docs[generation_path] is None:
            return _Documents(project, docs[generation_path], jobs, Stored({}, frozenset()))
        video = has_video(project)
        self._video.set(project_id, video)
        if video and RESTORED_VIDEO not in jobs:
            path = paths.job(project_id, generation_id, RESTORED_VIDEO)
            jobs[RESTORED_VIDEO] = self.store.get_documents([path])[path]
        outbox = self.outbox.read(project_id, generation_id)
        return _Documents(project, docs[generation_path], jobs, outbox)

    def _deliver(
        self,
        recorded: Recorded,
        ce_id: str,
        session: SinkSession | None,
        held: frozenset[str],
    ) -> dict[str, Any]:
        """Attempt what is due now, in rank order; what fails waits for the relay."""
        events = list(recorded.events)
        if self.deliverer is None or not events:
            return {}
        try:
            tally = self.deliverer.deliver(events, ce_id, EVENT_TRIGGER, session, held)
        except StoreUnavailable:
            # Recorded: the relay attempts it once this call's lease ends.
            return {"deliveryLeftToRelay": True}
        fields: dict[str, Any] = {}
        if tally.reached:
            fields["delivered"] = tally.reached
        if tally.due:
            fields["deliveries"] = tally.counts()
        if tally.left:
            fields["leftToOthers"] = tally.left
        if tally.retried or tally.left:
            fields["oldestUndeliveredSeconds"] = self._waited(events)
        return fields

    def _waited(self, waiting: list[OutboxEvent]) -> float | None:
        """Seconds since the oldest of ``waiting`` was recorded."""
        known = [e.created_at for e in waiting if e.created_at is not None]
        if not known:
            return None
        return round((self.clock() - min(known)).total_seconds(), 3)


def _statuses(new: NewEvent) -> set[str]:
    return {d.status for d in new.deliveries.values()}


@dataclass(frozen=True)
class _Documents:
    project: dict[str, Any] | None
    generation: dict[str, Any] | None
    jobs: dict[str, dict[str, Any] | None]
    outbox: Stored
