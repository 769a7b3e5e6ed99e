"""One Firestore database's connection: lazy client, deadline, retry, reconnect, outage type."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import grpc
from google.api_core import exceptions as google_exceptions
from google.api_core import retry as retries
from google.cloud import firestore

from diffio_progress.core.errors import StoreUnavailable

from .config import Settings

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "(default)"
# What a Firestore call raises when it failed on the way to or in Firestore.
_FAILURES = (google_exceptions.GoogleAPIError, grpc.RpcError)


class FirestoreConnection:
    """Every Firestore call of a function goes through one of these, one per database.

    The client is created on first use (so importing needs no credentials)
    and shared by all threads. Each call is bounded by ``timeout`` seconds and
    retries transient errors within it (``retry``); a write with a
    precondition is sent once, so that a retried write that had already
    landed never reads as a conflict. Any failure inside ``guarded()`` is the
    typed ``StoreUnavailable``, and after a lost connection the client is
    dropped, so the next call dials afresh instead of waiting out gRPC's
    reconnect backoff.
    """

    def __init__(
        self,
        timeout: float,
        client_factory: Callable[[], firestore.Client] | None = None,
        project: str | None = None,
        database: str = DEFAULT_DATABASE,
    ) -> None:
        self.timeout = timeout
        self.database = database
        self._factory = client_factory or (
            lambda: firestore.Client(project=project, database=database)
        )
        self._client: firestore.Client | None = None
        self._lock = threading.Lock()
        # Transient errors are retried briefly, but never past the deadline:
        # the client's default would keep a call waiting for a minute.
        self.retry = retries.Retry(
            predicate=retries.if_transient_error,
            initial=0.05,
            maximum=0.5,
            multiplier=2,
            timeout=timeout,
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, database: str = DEFAULT_DATABASE
    ) -> FirestoreConnection:
        """The deployed connection to ``database`` of the settings' project."""
        return cls(settings.firestore_timeout, project=settings.project, database=database)

    @property
    def client(self) -> firestore.Client:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory()
                client = self._client
        return client

    @contextmanager
    def guarded(self) -> Iterator[firestore.Client]:
        """The client, for calls whose every Firestore failure becomes ``StoreUnavailable``.

        Only the failure's type is logged. Exceptions a caller expects (a
        precondition's ``Conflict``, say) are caught by the caller inside the block.
        """
        client = self.client
        try:
            yield client
        except _FAILURES as exc:
            raise self._unavailable(client, exc) from exc
        except ValueError as exc:
            # A transaction that could not begin tries to roll back and raises
            # "no transaction ID" instead, while handling the real failure.
            if isinstance(exc.__context__, _FAILURES):
                raise self._unavailable(client, exc.__context__) from exc
            # gRPC's "Cannot invoke RPC: Channel closed!": another thread closed
            # this client's channel in _redial while this call was starting.
            if self._client is client:
                raise
            raise StoreUnavailable("channel closed by a reconnect") from exc

    def _unavailable(self, client: firestore.Client, exc: BaseException) -> StoreUnavailable:
        """Log the failure's type only; after a lost connection, dial afresh next time."""
        log.warning("Firestore unavailable: %s", type(exc).__name__)
        if _connection_lost(exc):
            self._redial(client)
        return StoreUnavailable(type(exc).__name__)

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
        # The one reach into the library's internals: firestore.Client offers no
        # public way to close its channel; its transport's close() is the only one.
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
