"""Endpoints and their secrets in the ``webhooks`` database: one per (apiKeyId, mode), atomically.

webhooks-api.md §5. The endpoint a configure call creates has an id derived
from its (apiKeyId, mode), so two racing first calls meet on one document and
the transaction makes one of them the creator. Documents from before modes
existed (moved from ``(default)`` by the operator's command) have random ids:
the first live one of a key is adopted, so it keeps its secret.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import grpc
from google.api_core import exceptions as google_exceptions
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from diffio_progress.core.endpoints import ENDPOINTS, SECRET_PREFIX
from diffio_progress.core.errors import StoreUnavailable
from diffio_progress.core.ids import is_queryable_value
from diffio_progress.core.webhook_records import configured, mode_of
from diffio_progress.core.webhook_requests import ConfigureRequest
from diffio_progress.worker.contention import EXHAUSTED, with_patience

from ..store import Document, FirestoreStore

# More endpoints than this for one key is a mistake, not a fan-out to honour.
MAX_ENDPOINTS = 20
SECRET_BYTES = 24


def new_signing_secret() -> str:
    """``whsec_`` and 24 random bytes in base64, as Svix makes them."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def pair_endpoint_id(api_key_id: str, mode: str) -> str:
    """The id of the endpoint of (``api_key_id``, ``mode``): the same for every call."""
    digest = hashlib.sha256(f"{api_key_id}\x00{mode}".encode("utf-8", "surrogatepass"))
    return "ep_" + digest.hexdigest()[:24]


@dataclass(frozen=True)
class Configured:
    """A configure call's result: the endpoint, and the secret if one was just made."""

    endpoint_id: str
    document: Document
    new_secret: str | None


class EndpointStore(FirestoreStore):
    """The ``webhooks`` database's ``webhookEndpoints``, under the store's deadline and outage
    handling (``StoreUnavailable``)."""

    def configure(
        self,
        request: ConfigureRequest,
        api_key_id: str,
        by_key_id: str | None,
        now: datetime,
        make_secret: Callable[[], str] = new_signing_secret,
    ) -> Configured:
        """Create or update the endpoint of (``api_key_id``, mode) in one transaction."""
        client = self.client
        pair_id = pair_endpoint_id(api_key_id, request.mode)
        secret = make_secret()

        @firestore.transactional
        def write(transaction: Any) -> Configured:
            endpoint_id, existing = self._current(client, transaction, api_key_id, request.mode)
            endpoint_id = endpoint_id or pair_id
            document, used = configured(existing, request, api_key_id, by_key_id, now, secret)
            transaction.set(client.document(ENDPOINTS, endpoint_id), document)
            return Configured(endpoint_id, document, secret if used else None)

        # A bounded read first: the transaction's begin and commit take the client library's
        # own retry (up to a minute) on an unreachable database; this fails within ours.
        self.find(api_key_id, request.mode)
        try:
            with self._guard(client):
                # Racing calls for one pair meet on one document: the losers try again.
                result: Configured = with_patience(
                    lambda: write(client.transaction()), self._timeout
                )
        except ValueError as error:
            if str(error).startswith(EXHAUSTED):
                raise StoreUnavailable("endpoint write kept losing to concurrent writes") from None
            # A transaction that could not even begin (Firestore unreachable) fails its
            # rollback with a ValueError; the cause is the outage.
            if isinstance(error.__context__, google_exceptions.GoogleAPIError | grpc.RpcError):
                raise StoreUnavailable(type(error.__context__).__name__) from None
            raise
        return result

    def find(self, api_key_id: str, mode: str) -> tuple[str, Document] | None:
        """The endpoint of (``api_key_id``, ``mode``), or ``None``."""
        client = self.client
        with self._guard(client):
            endpoint_id, document = self._current(client, None, api_key_id, mode)
        if endpoint_id is None or document is None:
            return None
        return endpoint_id, document

    def of_key(self, api_key_id: str) -> list[tuple[str, Document]]:
        """Every endpoint document of ``api_key_id`` (any mode), at most ``MAX_ENDPOINTS``."""
        client = self.client
        with self._guard(client):
            return self._of_key(client, None, api_key_id)

    def _current(
        self, client: firestore.Client, transaction: Any, api_key_id: str, mode: str
    ) -> tuple[str | None, Document | None]:
        pair_id = pair_endpoint_id(api_key_id, mode)
        snapshot = client.document(ENDPOINTS, pair_id).get(
            transaction=transaction, retry=self._retry, timeout=self._timeout
        )
        if snapshot.exists:
            return pair_id, snapshot.to_dict() or {}
        adopted = [
            (i, d) for i, d in self._of_key(client, transaction, api_key_id) if mode_of(d) == mode
        ]
        if adopted:
            adopted.sort(key=lambda item: str(item[1].get("createdAt") or ""))
            return adopted[0]
        return None, None

    def _of_key(
        self, client: firestore.Client, transaction: Any, api_key_id: str
    ) -> list[tuple[str, Document]]:
        if not is_queryable_value(api_key_id):
            return []  # no key has such an id
        query = (
            client.collection(ENDPOINTS)
            .where(filter=FieldFilter("apiKeyId", "==", api_key_id))
            .limit(MAX_ENDPOINTS)
        )
        snapshots = query.get(transaction=transaction, retry=self._retry, timeout=self._timeout)
        return [(s.id, s.to_dict() or {}) for s in snapshots]
