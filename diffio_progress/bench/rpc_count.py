"""Count Firestore RPCs and documents on the wire (tests and the benchmark; never deployed)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.cloud import firestore

BATCH_GET = "BatchGetDocuments"
RUN_QUERY = "RunQuery"


class RpcCounter:
    """Process-wide, thread-safe tallies of Firestore RPCs and the documents they carried.

    ``calls[method]`` counts RPCs as sent on the channel (so a retry counts
    again); ``found``/``missing`` count BatchGetDocuments lookups; ``results``
    counts documents a RunQuery returned.
    """

    def __init__(self, record_documents: bool = False) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        # Tests may ask which documents were requested; the benchmark need not pay for it.
        self._record = record_documents
        self._requested: list[str] = []

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def requested(self, names: list[str]) -> None:
        if self._record:
            with self._lock:
                self._requested.extend(names)

    def requested_documents(self) -> list[str]:
        """Paths (``apiProjects/p/...``) that BatchGetDocuments asked for, in order."""
        with self._lock:
            return list(self._requested)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._requested.clear()


def rpcs(counts: dict[str, int]) -> int:
    """Round trips: every RPC counted in ``counts``."""
    return sum(v for k, v in counts.items() if k.startswith("calls."))


def reads(counts: dict[str, int]) -> int:
    """Billed document reads: each lookup (found or missing) and each query result.

    Firestore bills a query that matches nothing as one read.
    """
    lookups = counts.get("found", 0) + counts.get("missing", 0)
    queries = counts.get(f"calls.{RUN_QUERY}", 0)
    return lookups + max(counts.get("results", 0), queries)


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


class _CountedStream:
    """A server-streaming call whose messages are tallied as they are read."""

    def __init__(self, call: Any, on_message: Callable[[Any], None]) -> None:
        self._call = call
        self._on_message = on_message

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        message = next(self._call)
        self._on_message(message)
        return message

    def __getattr__(self, name: str) -> Any:
        # cancel(), code(), trailing_metadata() ...: the wrapped call answers.
        return getattr(self._call, name)


class CountingInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Counts each RPC by method name, and the documents in streamed responses."""

    def __init__(self, counter: RpcCounter) -> None:
        self.counter = counter

    def _count_call(self, details: Any) -> str:
        method = str(details.method).rsplit("/", 1)[-1]
        self.counter.add(f"calls.{method}")
        return method

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        self._count_call(details)
        return continuation(details, request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        method = self._count_call(details)
        if method == BATCH_GET:
            # "projects/{p}/databases/{d}/documents/apiKeys/..." -> "apiKeys/..."
            self.counter.requested([n.split("/documents/", 1)[-1] for n in request.documents])
        return _CountedStream(continuation(details, request), self._tally(method))

    def _tally(self, method: str) -> Callable[[Any], None]:
        counter = self.counter

        def on_message(message: Any) -> None:
            # Proto-plus messages: "field in message" is presence of a oneof member.
            if method == BATCH_GET:
                if "found" in message:
                    counter.add("found")
                elif "missing" in message:
                    counter.add("missing")
            elif method == RUN_QUERY and "document" in message:
                counter.add("results")

        return on_message


class CountingClient(firestore.Client):
    """A Firestore client whose gRPC channel counts every RPC into ``counter``.

    The client library builds its channel itself, so the interceptor goes in
    at the two places it does so (emulator and production endpoint).
    """

    def __init__(self, counter: RpcCounter, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._interceptor = CountingInterceptor(counter)

    def _emulator_channel(self, transport: Any) -> Any:
        channel = super()._emulator_channel(transport)  # type: ignore[no-untyped-call]
        return grpc.intercept_channel(channel, self._interceptor)

    def _firestore_api_helper(self, transport: Any, client_class: Any, client_module: Any) -> Any:
        interceptor = self._interceptor

        class InterceptedTransport(transport):  # type: ignore[misc]
            @classmethod
            def create_channel(cls, *args: Any, **kwargs: Any) -> Any:
                return grpc.intercept_channel(
                    transport.create_channel(*args, **kwargs), interceptor
                )

        return super()._firestore_api_helper(InterceptedTransport, client_class, client_module)


def client_factory(
    counter: RpcCounter, project: str | None, database: str = "(default)"
) -> Callable[[], firestore.Client]:
    """A ``FirestoreConnection`` client factory whose clients count into ``counter``."""
    return lambda: CountingClient(counter, project=project, database=database)


# Served functions under the benchmark answer their totals here (GET) instead of polling.
COUNTS_PATH = "/_bench/rpc-counts"


def counts_body(counter: RpcCounter) -> bytes:
    return json.dumps(counter.snapshot(), sort_keys=True).encode()
