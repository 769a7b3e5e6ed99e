"""The generation document's writers: a worker's transcription, the dispatcher's queue (§3).

    generation = GenerationWriter(firestore.Client(), "proj-123", "gen-123")
    generation.queue(3, "Waiting for a GPU")   # the dispatcher, while no worker has it
    generation.queue(1, "Waiting for a GPU")   # positions only go down
    generation.dequeue()                       # a worker took it: the queue is gone for good
    generation.transcription("pending")        # the transcription step starts ...
    generation.transcription("available")      # ... and its transcript is ready

Every write is a Firestore transaction that reads first, so nothing moves
backwards even with several writers racing: a queue position never rises, a
generation a worker took is never queued again, and a transcription that is
``available`` or ``unavailable`` is final. Each method returns whether it wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from google.cloud import firestore

from diffio_progress.core import paths
from diffio_progress.core.optional_fields import (
    TRANSCRIPTION_STATUSES,
    queue_position,
    transcription_status,
)
from diffio_progress.core.stages import INFERENCE, PENDING, normalize_status

from .contention import with_patience

log = logging.getLogger(__name__)

TRANSCRIPTION = "transcription"
QUEUE = "queue"
# Set when a worker takes the generation; a queue update after it is a late one.
DEQUEUED_AT = "dequeuedAt"
# pending may become either outcome; an outcome is final (a retry is a new generation).
_TRANSCRIPTION_RANK = {"pending": 0, "available": 1, "unavailable": 1}

Document = Mapping[str, Any]
Plan = Callable[[Document, Document | None], dict[str, Any] | None]


# -- the pure part: which fields change -------------------------------------------


def transcription_update(generation: Document, status: str) -> dict[str, Any] | None:
    """The fields to update for ``status``, or ``None`` when it is not a step forward.

    A stored transcription the reader would leave out (malformed) counts as
    none, so the writer repairs it. Other keys of a valid stored map survive.
    """
    stored = generation.get(TRANSCRIPTION)
    current = transcription_status(stored)
    if current is not None and _TRANSCRIPTION_RANK[status] <= _TRANSCRIPTION_RANK[current]:
        return None
    if current is not None:
        # A field path: only the status changes inside the map.
        return {f"{TRANSCRIPTION}.status": status}
    return {TRANSCRIPTION: {"status": status}}


def queue_update(
    generation: Document, inference: Document | None, position: int, message: str | None
) -> dict[str, Any] | None:
    """The new ``queue``, or ``None`` when it would be a step back.

    Refused: a position higher than the stored one, the same queue again, a
    generation a worker already took (``dequeuedAt``), or one whose inference
    has started (the reader would hide that queue as stale anyway).
    """
    if generation.get(DEQUEUED_AT) is not None:
        return None
    if inference is not None and normalize_status(inference.get("status")) != PENDING:
        return None
    stored = generation.get(QUEUE)
    if isinstance(stored, Mapping):
        current = queue_position(stored.get("position"))
        if current is not None and (
            position > current or (position == current and stored.get("message") == message)
        ):
            return None
    return {QUEUE: {"position": position, "message": message}}


def dequeue_update(generation: Document) -> dict[str, Any] | None:
    """Remove ``queue`` and mark the generation taken, once; ``None`` if already taken."""
    if generation.get(DEQUEUED_AT) is not None:
        return None
    return {QUEUE: firestore.DELETE_FIELD, DEQUEUED_AT: firestore.SERVER_TIMESTAMP}


# -- the I/O part ----------------------------------------------------------------------


@firestore.transactional
def _apply(transaction: Any, refs: list[Any], plan: Plan) -> bool:
    snapshots = {s.reference.path: s for s in transaction.get_all(refs)}
    generation = snapshots[refs[0].path]
    if not generation.exists:
        # Never create a half generation (no owner): it is missing or was deleted.
        log.warning("generation document %s does not exist; nothing written", refs[0].path)
        return False
    job = snapshots[refs[1].path] if len(refs) > 1 else None
    job_fields = (job.to_dict() or {}) if job is not None and job.exists else None
    fields = plan(generation.to_dict() or {}, job_fields)
    if fields is None:
        return False
    transaction.update(refs[0], {**fields, "updatedAt": firestore.SERVER_TIMESTAMP})
    return True


class GenerationWriter:
    """Writes the generation document's ``transcription`` and ``queue``; safe across threads.

    ``False`` from a method means nothing was written: the update was a step
    back (a late or duplicate one), or the generation document does not exist
    (this writer never creates it: the dispatcher does, with its owner).
    """

    def __init__(
        self,
        db: firestore.Client,
        api_project_id: str,
        generation_id: str,
        *,
        max_attempts: int = 20,
        patience_seconds: float = 60.0,
    ) -> None:
        self.db = db
        self.ref = db.document(*paths.generation(api_project_id, generation_id))
        self.inference_ref = db.document(*paths.job(api_project_id, generation_id, INFERENCE))
        # Racing writers abort each other's transactions; retry generously, and after
        # max_attempts lost in a row keep trying, with pauses, for patience_seconds.
        self.max_attempts = max_attempts
        self.patience_seconds = patience_seconds

    def transcription(self, status: str) -> bool:
        """Set ``transcription.status``: ``pending``, then ``available`` or ``unavailable``."""
        if status not in TRANSCRIPTION_STATUSES:
            raise ValueError(
                f"status must be one of {', '.join(TRANSCRIPTION_STATUSES)}, got {status!r}"
            )
        return self._write([self.ref], lambda doc, _: transcription_update(doc, status))

    def queue(self, position: int, message: str | None = None) -> bool:
        """Set ``queue`` to ``{position, message}``; a position above the stored one is ignored.

        ``position`` 0 means next. The same position with a new message is written.
        """
        if queue_position(position) is None:
            raise ValueError(f"position must be an integer >= 0, got {position!r}")
        if message is not None and not isinstance(message, str):
            raise TypeError("message must be a string or None")
        return self._write(
            [self.ref, self.inference_ref],
            lambda generation, inference: queue_update(generation, inference, position, message),
        )

    def dequeue(self) -> bool:
        """A worker took the generation: remove ``queue``; any later ``queue()`` is refused."""
        return self._write([self.ref], lambda doc, _: dequeue_update(doc))

    def read(self) -> dict[str, Any] | None:
        snapshot = self.ref.get()
        return (snapshot.to_dict() or {}) if snapshot.exists else None

    def _write(self, refs: list[Any], plan: Plan) -> bool:
        def attempt() -> bool:
            transaction = self.db.transaction(max_attempts=self.max_attempts)
            return bool(_apply(transaction, refs, plan))

        return with_patience(attempt, self.patience_seconds)
