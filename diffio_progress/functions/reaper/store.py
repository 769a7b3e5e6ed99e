"""The reaper's Firestore I/O: the stale-stage query, its cursor document, and the stage write."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.api_core import exceptions as google_exceptions
from google.cloud.firestore_v1.base_query import FieldFilter

from diffio_progress.core import paths
from diffio_progress.core.reaping import Cursor, Position
from diffio_progress.core.stages import LiveExecution
from diffio_progress.worker.stage_writer import StageWriter

from ..firestore import FirestoreConnection
from ..store import Document

log = logging.getLogger(__name__)

# Outside the event triggers' patterns (apiProjects/{p}/generations/{g} and .../jobs/{stage}):
# saving the cursor must never raise a status-change event.
CURSOR_DOCUMENT = ("reaper", "cursor")
# The composite index in firestore.indexes.json serves exactly this (tests check they agree).
STATUS, UPDATED_AT = "status", "updatedAt"


@dataclass(frozen=True)
class Candidate:
    """A job document the query found, and its place in the query's order."""

    position: Position
    data: Document


@dataclass(frozen=True)
class SavedCursor:
    """The cursor as read, with the version that a save must still find to replace it."""

    cursor: Cursor
    update_time: Any = None  # the document's update time; None: no cursor saved yet


class ReaperStore:
    """The reaper's calls, each through the function's one ``FirestoreConnection``."""

    # A stage that others keep writing (another reaper, a worker finishing) is left to the
    # next call after this many tries, rather than fought over: the reaper is never in a hurry.
    write_attempts = 5

    def __init__(self, connection: FirestoreConnection) -> None:
        self.connection = connection

    def read_cursor(self) -> SavedCursor:
        connection = self.connection
        with connection.guarded() as client:
            snapshot = client.document(*CURSOR_DOCUMENT).get(
                retry=connection.retry, timeout=connection.timeout
            )
        if not snapshot.exists:
            return SavedCursor(Cursor())
        data = snapshot.to_dict() or {}
        after = None
        path, updated_at = data.get("afterPath"), data.get("afterUpdatedAt")
        parts = tuple(path.split("/")) if isinstance(path, str) else ()
        if parts and len(parts) % 2 == 0 and all(parts) and isinstance(updated_at, datetime):
            after = Position(updated_at, parts)
        elif path is not None:
            # Not one this code saved: start the lap over rather than fail every call.
            log.warning("reaper: ignoring a malformed cursor; starting from the oldest stage")
        lap = data.get("lap")
        return SavedCursor(Cursor(lap if isinstance(lap, int) else 0, after), snapshot.update_time)

    def save_cursor(self, cursor: Cursor, read: SavedCursor) -> bool:
        """Replace the cursor ``read`` with ``cursor``, unless another call saved one since.

        Concurrent calls started from the same cursor; the first to save wins and
        the others keep it, so the cursor only ever moves on from where it was.
        """
        after = cursor.after
        fields = {
            "lap": cursor.lap,
            "afterUpdatedAt": after.updated_at if after else None,
            "afterPath": "/".join(after.path) if after else None,
        }
        timeout = self.connection.timeout
        with self.connection.guarded() as client:
            ref = client.document(*CURSOR_DOCUMENT)
            try:
                # Sent once (a precondition): a retry that had landed would read as a conflict.
                if read.update_time is None:
                    ref.create(fields, retry=None, timeout=timeout)
                else:
                    option = client.write_option(last_update_time=read.update_time)
                    ref.update(fields, option=option, retry=None, timeout=timeout)
            except (google_exceptions.Conflict, google_exceptions.FailedPrecondition):
                return False
        return True

    def stale_jobs(
        self, statuses: Sequence[str], before: datetime, after: Position | None, limit: int
    ) -> list[Candidate]:
        """Job documents with one of ``statuses``, last written before ``before``.

        Oldest first, then by path; only those after ``after``; at most ``limit``.
        """
        connection = self.connection
        with connection.guarded() as client:
            query = (
                client.collection_group(paths.JOBS)
                .where(filter=FieldFilter(STATUS, "in", list(statuses)))
                .where(filter=FieldFilter(UPDATED_AT, "<", before))
                .order_by(UPDATED_AT)
                .order_by("__name__")
            )
            if after is not None:
                # A reference, not a path string: on a collection group a string would be
                # read as a document id under the group's name.
                ref = client.document(*after.path)
                query = query.start_after({UPDATED_AT: after.updated_at, "__name__": ref})
            snapshots = query.limit(limit).get(retry=connection.retry, timeout=connection.timeout)
        found = []
        for snapshot in snapshots:
            data = snapshot.to_dict() or {}
            path = tuple(snapshot.reference.path.split("/"))
            found.append(Candidate(Position(data[UPDATED_AT], path), data))
        return found

    def fail_stage(self, path: paths.DocPath, execution_name: str, live: LiveExecution) -> bool:
        """Write the stage failed through the worker-side writer's transaction.

        ``False`` when the transaction found it finished, or naming another
        execution, or could not commit for contention (one warning; a later call
        finds the stage again if it is still unfinished).
        """
        where = paths.stage_of_job(path)
        if where is None:
            raise ValueError("not a stage document of the data contract")
        connection = self.connection
        with connection.guarded() as client:
            # A bounded look first: a transaction's begin takes the client library's own
            # retry, which keeps an unreachable Firestore busy for a minute, past the
            # function's deadline; this read is StoreUnavailable within FIRESTORE_TIMEOUT.
            # Dead stages are rare, so the extra read is cheap.
            client.document(*path).get(
                field_paths=[STATUS], retry=connection.retry, timeout=connection.timeout
            )
            # No patience: a stage others keep writing is left for a later call, not waited on.
            writer = StageWriter(
                client, *where, max_attempts=self.write_attempts, patience_seconds=0
            )
            try:
                return writer.execution_ended(execution_name, live)
            except ValueError as error:
                # The client library's "Failed to commit transaction in N attempts".
                if not isinstance(error.__cause__, google_exceptions.Aborted):
                    raise
        log.warning(
            "reaper: %s is being written by others; left for a later call",
            "/".join(path),
            extra={"fields": {"jobPath": "/".join(path), "executionName": execution_name}},
        )
        return False
