"""The webhooks functions' reads of API keys in ``(default)``: by hash, and by ``keyId``."""

from __future__ import annotations

from google.cloud.firestore_v1.base_query import FieldFilter

from diffio_progress.core import paths
from diffio_progress.core.ids import is_queryable_value

from ..store import Document, FirestoreStore

# A keyId names one key; more matches than this are a data error, not worth reading.
_MATCHES = 5


class KeyStore(FirestoreStore):
    """API-key documents, under the store's deadline and outage handling."""

    def by_hash(self, key_hash: str) -> Document | None:
        path = paths.api_key(key_hash)
        return self.get_documents([path])[path]

    def by_key_id(self, key_id: str) -> list[Document]:
        """Every key document whose ``keyId`` is ``key_id`` (a query on a single-field index)."""
        if not is_queryable_value(key_id):
            return []  # no key has such an id

        client = self.client
        query = (
            client.collection(paths.API_KEYS)
            .where(filter=FieldFilter("keyId", "==", key_id))
            .limit(_MATCHES)
        )
        with self._guard(client):
            snapshots = query.get(retry=self._retry, timeout=self._timeout)
        return [s.to_dict() or {} for s in snapshots]
