"""Firestore reads, and nothing else: plain dicts out, never SDK objects."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions as google_exceptions
from google.cloud.firestore_v1.base_query import FieldFilter

from diffio_progress.core import paths
from diffio_progress.core.paths import DocPath

from .firestore import FirestoreConnection

log = logging.getLogger(__name__)

Document = dict[str, Any]


class Documents(dict[DocPath, Document | None]):
    """Documents by path (``None``: missing), and when each one found was created.

    A creation time tells a document from one deleted and created again at the
    same path, which is how a reader that remembers finished stages notices.
    """

    def __init__(self, doc_paths: Sequence[DocPath] = ()) -> None:
        super().__init__(dict.fromkeys(doc_paths))
        self.created: dict[DocPath, tuple[int, int] | None] = {}


@dataclass(frozen=True)
class FoundGeneration:
    api_project_id: str
    generation_id: str
    data: Document
    created: tuple[int, int] | None = None


class FirestoreStore:
    """Reads the contract's documents through one ``FirestoreConnection``."""

    def __init__(self, connection: FirestoreConnection) -> None:
        self.connection = connection

    def get_documents(self, doc_paths: Sequence[DocPath]) -> Documents:
        """One batched read (BatchGetDocuments) of ``doc_paths``; missing ones map to None."""
        connection = self.connection
        found = Documents(doc_paths)
        with connection.guarded() as client:
            refs = [client.document(*path) for path in doc_paths]
            for snapshot in client.get_all(
                refs, retry=connection.retry, timeout=connection.timeout
            ):
                if snapshot.exists:
                    path = _path_of(snapshot)
                    found[path] = snapshot.to_dict() or {}
                    found.created[path] = _created(snapshot)
        return found

    def find_generations(self, generation_id: str, limit: int = 5) -> list[FoundGeneration]:
        """Collection-group lookup of a generation by id, across all projects."""
        connection = self.connection
        results = []
        with connection.guarded() as client:
            query = (
                client.collection_group(paths.GENERATIONS)
                .where(filter=FieldFilter("generationId", "==", generation_id))
                .limit(limit)
            )
            try:
                snapshots = query.get(retry=connection.retry, timeout=connection.timeout)
            except google_exceptions.InvalidArgument:
                # Firestore refuses to query for a value at its 1,500-byte index
                # limit (a valid document id can be that long). That is the
                # caller's input, not an outage: nothing can be found by it.
                log.warning("generation id too large to query; treating it as not found")
                return []
        for snapshot in snapshots:
            project_id = paths.project_of_generation(_path_of(snapshot))
            if project_id is None or snapshot.id != generation_id:
                log.warning("ignoring a generations document outside the contract's layout")
                continue
            data = snapshot.to_dict() or {}
            results.append(FoundGeneration(project_id, generation_id, data, _created(snapshot)))
        return results


def _path_of(snapshot: Any) -> DocPath:
    # Document ids cannot contain "/", so the path string splits unambiguously.
    return tuple(snapshot.reference.path.split("/"))


def _created(snapshot: Any) -> tuple[int, int] | None:
    """A snapshot's creation time as (seconds, nanos): lookups and queries give other types."""
    created = getattr(snapshot, "create_time", None)
    if created is None:
        return None
    if hasattr(created, "timestamp_pb"):  # DatetimeWithNanoseconds, from a lookup
        created = created.timestamp_pb()
    return int(created.seconds), int(created.nanos)  # a protobuf Timestamp, from a query
