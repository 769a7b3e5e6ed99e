"""The delivery log's reads in the ``webhooks`` database: one query per page, an event by id.

docs/delivery-storage.md. ``list_events`` is one collection-group query on
``events`` (outbox and test events alike): the key, the mode, the optional
filters, ``createdAt`` within the window, ordered newest first by
(``createdAt``, document path) and started after the cursor's position: keyset
pagination, so events added meanwhile (always newer than any page already
read) never shift a later page. It asks for ``limit`` + 1 documents, the extra
one only telling whether a next page exists, so a page bills at most
``limit`` + 1 reads, and the endpoint's one lookup makes ``limit`` + 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core import exceptions as google_exceptions
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from diffio_progress.core.endpoints import ENDPOINTS
from diffio_progress.core.errors import InvalidCursor
from diffio_progress.core.events import EVENTS
from diffio_progress.core.log_cursor import Cursor
from diffio_progress.core.log_requests import EventFilters
from diffio_progress.core.log_views import ATTEMPTS

from ..firestore import FirestoreConnection
from ..store import Document

# More attempts than this of one event are not listed (a schedule has 11, a client's resends
# are bounded per key): the oldest first, as the contract orders them.
MAX_ATTEMPTS_LISTED = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Path = tuple[str, ...]


@dataclass(frozen=True)
class Found:
    """One event found by id: where it is, what it holds, when it was last written."""

    path: Path
    document: Document
    update_time: Any


@dataclass(frozen=True)
class Page:
    """One page's events (path and document, newest first), and whether more follow."""

    events: list[tuple[Path, Document]]
    more: bool


def micros(moment: datetime) -> int:
    """A Firestore time as whole microseconds since the epoch (its stored precision)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


class DeliveryLogStore:
    """Reads of the ``webhooks`` database's events, attempts and endpoints; thread-safe."""

    def __init__(self, connection: FirestoreConnection) -> None:
        self.connection = connection

    def page(
        self,
        api_key_id: str,
        filters: EventFilters,
        oldest: datetime,
        cursor: Cursor | None,
        limit: int,
    ) -> Page:
        """One page of the key's events, newest first, recorded at or after ``oldest``."""
        connection = self.connection
        with connection.guarded() as client:
            query = self.events_query(client, api_key_id, filters.mode, oldest, filters.until)
            for name, value in (
                ("deliveryStatus", filters.status),
                ("eventType", filters.event_type),
                ("generationId", filters.generation_id),
            ):
                if value is not None:
                    query = query.where(filter=FieldFilter(name, "==", value))
            query = query.order_by("createdAt", direction=firestore.Query.DESCENDING).order_by(
                "__name__", direction=firestore.Query.DESCENDING
            )
            if cursor is not None and cursor.path is not None and cursor.created_us is not None:
                after = [from_micros(cursor.created_us), client.document(*cursor.path)]
                query = query.start_after(after)
            try:
                snapshots = query.limit(limit + 1).get(
                    retry=connection.retry, timeout=connection.timeout
                )
            except google_exceptions.InvalidArgument:
                raise InvalidCursor() from None  # a position Firestore cannot start after
        found = [(_path(s), s.to_dict() or {}) for s in snapshots]
        return Page(found[:limit], len(found) > limit)

    def events_query(
        self,
        client: firestore.Client,
        api_key_id: str,
        mode: str,
        oldest: datetime,
        until: datetime | None,
    ) -> Any:
        """The key's events in a mode, recorded in [``oldest``, ``until``)."""
        query = (
            client.collection_group(EVENTS)
            .where(filter=FieldFilter("apiKeyId", "==", api_key_id))
            .where(filter=FieldFilter("mode", "==", mode))
            .where(filter=FieldFilter("createdAt", ">=", oldest))
        )
        if until is not None:
            query = query.where(filter=FieldFilter("createdAt", "<", until))
        return query

    def find_event(
        self, event_id: str, api_key_id: str, mode: str, oldest: datetime
    ) -> Found | None:
        """The event ``event_id`` if it is the key's, in ``mode``, recorded since ``oldest``.

        Another key's event, another mode's and an expired one are all ``None``: the
        caller cannot tell them apart from an id that never existed.
        """
        connection = self.connection
        with connection.guarded() as client:
            query = (
                client.collection_group(EVENTS)
                .where(filter=FieldFilter("eventId", "==", event_id))
                .limit(2)
            )
            snapshots = query.get(retry=connection.retry, timeout=connection.timeout)
        for snapshot in snapshots:
            document = snapshot.to_dict() or {}
            created = document.get("createdAt")
            if (
                document.get("apiKeyId") == api_key_id
                and document.get("mode") == mode
                and isinstance(created, datetime)
                and created >= oldest
            ):
                return Found(_path(snapshot), document, snapshot.update_time)
        return None

    def attempts(self, event_id: str) -> list[Document]:
        """The event's attempts, oldest first."""
        connection = self.connection
        with connection.guarded() as client:
            query = (
                client.collection(ATTEMPTS)
                .where(filter=FieldFilter("eventId", "==", event_id))
                .order_by("at")
                .limit(MAX_ATTEMPTS_LISTED)
            )
            snapshots = query.get(retry=connection.retry, timeout=connection.timeout)
        return [s.to_dict() or {} for s in snapshots]

    def endpoint(self, endpoint_id: str) -> Document | None:
        """The endpoint document ``endpoint_id``: one lookup."""
        connection = self.connection
        with connection.guarded() as client:
            snapshot = client.document(ENDPOINTS, endpoint_id).get(
                retry=connection.retry, timeout=connection.timeout
            )
        return (snapshot.to_dict() or {}) if snapshot.exists else None


def _path(snapshot: Any) -> Path:
    return tuple(snapshot.reference.path.split("/"))
