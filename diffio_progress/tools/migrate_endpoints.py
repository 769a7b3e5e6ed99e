"""`webhooks migrate-endpoints`: the one-off move of endpoint documents out of ``(default)``.

Endpoints and their signing secrets used to live in ``(default)``, which every
identity of the project may read. The event function and the webhooks API now
read only the ``webhooks`` database, so endpoints left behind get nothing until
moved. Each document is copied under its own id (``mode`` ``live`` added if it
had none, so it is delivered to exactly as before), then deleted from
``(default)``. Run again after an interruption, it finishes the job: a copy
already there is kept, and its original is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.api_core import exceptions as google_exceptions
from google.cloud import firestore

from diffio_progress.core.endpoints import ENDPOINTS
from diffio_progress.core.webhook_records import mode_of

_TIMEOUT = 15.0


@dataclass(frozen=True)
class Moved:
    """What one run did: endpoint ids moved, and those already there from an earlier run."""

    moved: tuple[str, ...]
    already: tuple[str, ...]


def migrate_endpoints(
    default: firestore.Client, webhooks: firestore.Client, dry_run: bool = False
) -> Moved:
    """Move every ``webhookEndpoints`` document of ``default`` into ``webhooks``."""
    moved, already = [], []
    for snapshot in default.collection(ENDPOINTS).stream(timeout=_TIMEOUT):
        document = snapshot.to_dict() or {}
        document["mode"] = mode_of(document)
        if dry_run:
            moved.append(snapshot.id)
            continue
        try:
            webhooks.document(ENDPOINTS, snapshot.id).create(document, timeout=_TIMEOUT)
            moved.append(snapshot.id)
        except google_exceptions.AlreadyExists:
            already.append(snapshot.id)  # copied by an interrupted run: only delete
        snapshot.reference.delete(timeout=_TIMEOUT)
    return Moved(tuple(moved), tuple(already))
