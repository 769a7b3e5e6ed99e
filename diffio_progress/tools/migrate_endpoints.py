"""`webhooks migrate-endpoints` and `encrypt-secrets`: endpoints moved, secrets sealed.

Endpoints and their signing secrets used to live in ``(default)``, which every
identity of the project may read. The event function and the webhooks API now
read only the ``webhooks`` database, so endpoints left behind get nothing until
moved. Each document is copied under its own id (``mode`` ``live`` added if it
had none, so it is delivered to exactly as before), then deleted from
``(default)``. Run again after an interruption, it finishes the job: a copy
already there is kept, and its original is deleted.

A moved secret was readable in ``(default)`` (and stays in its old exports), so
each is rotated as it moves (webhooks-api.md §6): a fresh secret, and the moved
one as ``previousSecret`` for the 24-hour overlap, both sealed. ``encrypt-secrets``
seals the plain secrets the ``webhooks`` database still holds, in place; a
document changed meanwhile is left for the next run, which also skips sealed ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from google.api_core import exceptions as google_exceptions
from google.cloud import firestore

from diffio_progress.core.endpoints import ENDPOINTS
from diffio_progress.core.webhook_records import ROTATION_OVERLAP, mode_of
from diffio_progress.functions.secret_box import SECRET_FIELDS, SecretBox, is_sealed

_TIMEOUT = 15.0


@dataclass(frozen=True)
class Moved:
    """What one run did: endpoint ids moved, and those already there from an earlier run."""

    moved: tuple[str, ...]
    already: tuple[str, ...]


def migrate_endpoints(
    default: firestore.Client,
    webhooks: firestore.Client,
    box: SecretBox,
    new_secret: Callable[[], str],
    now: datetime,
    dry_run: bool = False,
) -> Moved:
    """Move every ``webhookEndpoints`` document of ``default`` into ``webhooks``, rotated."""
    moved, already = [], []
    for snapshot in default.collection(ENDPOINTS).stream(timeout=_TIMEOUT):
        document = snapshot.to_dict() or {}
        document["mode"] = mode_of(document)
        if dry_run:
            moved.append(snapshot.id)
            continue
        if isinstance(document.get("secret"), str):
            document.update(
                secret=new_secret(),
                previousSecret=document["secret"],
                previousSecretExpiresAt=now + ROTATION_OVERLAP,
            )
        try:
            sealed = box.seal_document(snapshot.id, document)
            webhooks.document(ENDPOINTS, snapshot.id).create(sealed, timeout=_TIMEOUT)
            moved.append(snapshot.id)
        except google_exceptions.AlreadyExists:
            already.append(snapshot.id)  # copied by an interrupted run: only delete
        snapshot.reference.delete(timeout=_TIMEOUT)
    return Moved(tuple(moved), tuple(already))


@dataclass(frozen=True)
class Encrypted:
    """What one run of ``encrypt-secrets`` did, by endpoint id."""

    sealed: tuple[str, ...]
    already: int
    changed_meanwhile: tuple[str, ...]


def encrypt_secrets(webhooks: firestore.Client, box: SecretBox) -> Encrypted:
    """Seal every plain secret field of the ``webhooks`` database's endpoints, in place."""
    sealed, changed = [], []
    already = 0
    for snapshot in webhooks.collection(ENDPOINTS).stream(timeout=_TIMEOUT):
        document = snapshot.to_dict() or {}
        plain = [
            name
            for name in SECRET_FIELDS
            if isinstance(document.get(name), str) and not is_sealed(document[name])
        ]
        if not plain:
            already += 1
            continue
        update = {name: box.seal(snapshot.id, document[name]) for name in plain}
        # Only if nobody (configure, a rotation) wrote it since it was read.
        option = webhooks.write_option(last_update_time=snapshot.update_time)
        try:
            snapshot.reference.update(update, option=option, timeout=_TIMEOUT)
            sealed.append(snapshot.id)
        except google_exceptions.FailedPrecondition:
            changed.append(snapshot.id)
    return Encrypted(tuple(sealed), already, tuple(changed))
