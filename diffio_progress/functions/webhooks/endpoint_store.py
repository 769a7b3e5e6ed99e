"""Endpoints and their secrets in the ``webhooks`` database: one per (apiKeyId, mode), atomically.

webhooks-api.md §5. The endpoint a configure call creates has an id derived
from its (apiKeyId, mode), so two racing first calls meet on one document and
the transaction makes one of them the creator. Documents from before modes
existed (moved from ``(default)`` by the operator's command) have random ids:
the first live one of a key is adopted, so it keeps its secret. Every secret
is stored sealed for its endpoint (``secret_box``): a new one, and a plain one
that a rotation keeps as ``previousSecret``.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from diffio_progress.core.deliveries import pair_endpoint_id
from diffio_progress.core.endpoints import ENDPOINTS, SECRET_PREFIX
from diffio_progress.core.errors import StoreUnavailable, WebhooksDisabled
from diffio_progress.core.ids import is_queryable_value
from diffio_progress.core.webhook_records import configured, mode_of
from diffio_progress.core.webhook_requests import ConfigureRequest
from diffio_progress.worker.contention import EXHAUSTED, with_patience

from ..firestore import FirestoreConnection
from ..secret_box import SecretBox
from ..store import Document

# More endpoints than this for one key is a mistake, not a fan-out to honour.
MAX_ENDPOINTS = 20
SECRET_BYTES = 24
NO_KEY = "Webhook signing secrets cannot be stored here: no key encrypts them"


def new_signing_secret() -> str:
    """``whsec_`` and 24 random bytes in base64, as Svix makes them."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@dataclass(frozen=True)
class Configured:
    """A configure call's result: the endpoint, and the secret if one was just made."""

    endpoint_id: str
    document: Document
    new_secret: str | None


class EndpointStore:
    """The ``webhooks`` database's ``webhookEndpoints``, through one ``FirestoreConnection``
    (its deadline, retries and outage type, ``StoreUnavailable``)."""

    def __init__(self, connection: FirestoreConnection, box: SecretBox | None) -> None:
        self.connection = connection
        self.box = box

    def configure(
        self,
        request: ConfigureRequest,
        api_key_id: str,
        by_key_id: str | None,
        now: datetime,
        make_secret: Callable[[], str] = new_signing_secret,
    ) -> Configured:
        """Create or update the endpoint of (``api_key_id``, mode) in one transaction."""
        if self.box is None:
            # No key to seal a secret with, and none is ever stored in plain text.
            raise WebhooksDisabled(NO_KEY)
        pair_id = pair_endpoint_id(api_key_id, request.mode)
        secret = make_secret()
        sealing = _Sealing(self.box)
        sealing.seal(pair_id, secret)  # the usual id: sealed before any transaction begins
        # A bounded read first: the transaction's begin and commit take the client library's
        # own retry (up to a minute) on an unreachable database; this fails within ours.
        self.find(api_key_id, request.mode)
        try:
            with self.connection.guarded() as client:

                @firestore.transactional
                def write(transaction: Any) -> Configured:
                    endpoint_id, existing = self._current(
                        client, transaction, api_key_id, request.mode
                    )
                    endpoint_id = endpoint_id or pair_id
                    sealed = sealing.seal(endpoint_id, secret)
                    document, used = configured(
                        existing, request, api_key_id, by_key_id, now, sealed
                    )
                    document = sealing.seal_document(endpoint_id, document)
                    transaction.set(client.document(ENDPOINTS, endpoint_id), document)
                    return Configured(endpoint_id, document, secret if used else None)

                # Racing calls for one pair meet on one document: the losers try again.
                result: Configured = with_patience(
                    lambda: write(client.transaction()), self.connection.timeout
                )
        except ValueError as error:
            if not str(error).startswith(EXHAUSTED):
                raise
            raise StoreUnavailable("endpoint write kept losing to concurrent writes") from None
        return result

    def find(self, api_key_id: str, mode: str) -> tuple[str, Document] | None:
        """The endpoint of (``api_key_id``, ``mode``), or ``None``."""
        with self.connection.guarded() as client:
            endpoint_id, document = self._current(client, None, api_key_id, mode)
        if endpoint_id is None or document is None:
            return None
        return endpoint_id, document

    def _current(
        self, client: firestore.Client, transaction: Any, api_key_id: str, mode: str
    ) -> tuple[str | None, Document | None]:
        pair_id = pair_endpoint_id(api_key_id, mode)
        snapshot = client.document(ENDPOINTS, pair_id).get(
            transaction=transaction, retry=self.connection.retry, timeout=self.connection.timeout
        )
        if snapshot.exists:
            return pair_id, snapshot.to_dict() or {}
        found = self._of_key(client, transaction, api_key_id)
        adopted = [(i, d) for i, d in found if mode_of(d) == mode]
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
        snapshots = query.get(
            transaction=transaction, retry=self.connection.retry, timeout=self.connection.timeout
        )
        return [(s.id, s.to_dict() or {}) for s in snapshots]


class _Sealing:
    """One call's sealing: each (endpoint id, secret) sealed once, however often the
    transaction is retried (a KMS call each)."""

    def __init__(self, box: SecretBox) -> None:
        self.box = box
        self._sealed: dict[tuple[str, str], str] = {}

    def seal(self, endpoint_id: str, secret: str) -> str:
        key = (endpoint_id, secret)
        if key not in self._sealed:
            self._sealed[key] = self.box.seal(endpoint_id, secret)
        return self._sealed[key]

    def seal_document(self, endpoint_id: str, document: Document) -> dict[str, Any]:
        """A plain ``previousSecret`` (a rotation of a secret from before) sealed too."""
        return self.box.seal_document(endpoint_id, document, self.seal)
