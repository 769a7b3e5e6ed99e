"""Firestore reads, and nothing else: plain dicts out, never SDK objects."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from google.api_core import exceptions as google_exceptions
from google.api_core import retry as retries
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from diffio_progress.core import paths
from diffio_progress.core.errors import StoreUnavailable
from diffio_progress.core.paths import DocPath

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
    """Reads the contract's documents under one bounded deadline per call.

    The client is created on first use (so importing needs no credentials)
    and shared by all threads. After an outage the client is dropped, so the
    next request dials afresh instead of waiting out gRPC's reconnect backoff.
    """

    def __init__(
        self,
        timeout: float,
        client_factory: Callable[[], firestore.Client] | None = None,
        project: str | None = None,
    ) -> None:
        self._timeout = timeout
        self._factory = client_factory or (lambda: firestore.Client(project=project))
        self._client: firestore.Client | None = None
        self._lock = threading.Lock()
        # Transient errors are retried briefly, but never past the deadline:
        # the client's default would keep a poll waiting for a minute.
        self._retry = retries.Retry(
            predicate=retries.if_transient_error,
            initial=0.05,
            maximum=0.5,
            multiplier=2,
            timeout=timeout,
        )

    @property
    def client(self) -> firestore.Client:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory()
                client = self._client
        return client

    def get_documents(self, doc_paths: Sequence[DocPath]) -> Documents:
        """One batched read (BatchGetDocuments) of ``doc_paths``; missing ones map to None."""
        client = self.client
        refs = [client.document(*path) for path in doc_paths]
        found = Documents(doc_paths)
        with self._guard(client):
            for snapshot in client.get_all(refs, retry=self._retry, timeout=self._timeout):
                if snapshot.exists:
                    path = _path_of(snapshot)
                    found[path] = snapshot.to_dict() or {}
                    found.created[path] = _created(snapshot)
        return found

    def find_generations(self, generation_id: str, limit: int = 5) -> list[FoundGeneration]:
        """Collection-group lookup of a generation by id, across all projects."""
        client = self.client
        query = (
            client.collection_group(paths.GENERATIONS)
            .where(filter=FieldFilter("generationId", "==", generation_id))
            .limit(limit)
        )
        results = []
        with self._guard(client):
            try:
                snapshots = query.get(retry=self._retry, timeout=self._timeout)
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

    @contextmanager
    def _guard(self, client: firestore.Client) -> Iterator[None]:
        """Turn any Firestore failure into ``StoreUnavailable``; log its type only."""
        try:
            yield
        except (google_exceptions.GoogleAPIError, grpc.RpcError) as exc:
            log.warning("Firestore unavailable: %s", type(exc).__name__)
            if _connection_lost(exc):
                self._redial(client)
            raise StoreUnavailable(type(exc).__name__) from exc
        except ValueError as exc:
            # gRPC's "Cannot invoke RPC: Channel closed!": another thread closed
            # this client's channel in _redial while this call was starting.
            if self._client is client:
                raise
            raise StoreUnavailable("channel closed by a reconnect") from exc

    def _redial(self, client: firestore.Client) -> None:
        """Forget ``client`` and close its channel, so the next call dials afresh.

        Closing matters: gRPC shares one connection between channels to the
        same target, so a new client would otherwise wait out the old one's
        reconnect backoff (growing to two minutes) after Firestore is back.
        A slow answer (DeadlineExceeded) keeps the client: its connection is
        fine, and closing it would cancel other threads' healthy calls.
        """
        with self._lock:
            if self._client is not client:
                return
            self._client = None
        # firestore.Client has no public close(); its transport does.
        transport = getattr(getattr(client, "_firestore_api_internal", None), "_transport", None)
        if transport is not None:
            transport.close()


def _connection_lost(exc: BaseException) -> bool:
    """Whether Firestore could not be reached at all (UNAVAILABLE), after any retries."""
    if isinstance(exc, google_exceptions.RetryError) and exc.cause is not None:
        return _connection_lost(exc.cause)
    if isinstance(exc, google_exceptions.ServiceUnavailable):
        return True
    code = getattr(exc, "code", None)
    return callable(code) and code() == grpc.StatusCode.UNAVAILABLE


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
