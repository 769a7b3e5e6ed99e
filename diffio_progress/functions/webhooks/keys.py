"""The webhooks functions' reads of API keys in ``(default)``: by hash, and by ``keyId``."""

from __future__ import annotations

from google.cloud.firestore_v1.base_query import FieldFilter

from diffio_progress.core import paths
from diffio_progress.core.ids import is_queryable_value

from ..store import Document, FirestoreStore

# A keyId names one key; more matches than this are a data error, not worth reading.
_MATCHES = 5


class KeyStore(FirestoreStore):
    """API-key documents in ``(default)``, through the store's ``FirestoreConnection``."""

    def by_hash(self, key_hash: str) -> Document | None:
        path = paths.api_key(key_hash)
        return self.get_documents([path])[path]

    def by_key_id(self, key_id: str) -> list[Document]:
        """Every key document whose ``keyId`` is ``key_id`` (a query on a single-field index)."""
        if not is_queryable_value(key_id):
            return []  # no key has such an id

        connection = self.connection
        with connection.guarded() as client:
            query = (
                client.collection(paths.API_KEYS)
                .where(filter=FieldFilter("keyId", "==", key_id))
                .limit(_MATCHES)
            )
            snapshots = query.get(retry=connection.retry, timeout=connection.timeout)
        return [s.to_dict() or {} for s in snapshots]
