"""Who is calling and which key's webhook they act on: the webhooks functions' authentication.

The progress function's steps, in its order (key from the headers, admission,
the key document read and checked), then the webhooks rules of
``core.webhook_access``: the permission, and the target ``apiKeyId``, looked up
by ``keyId`` when it is not the caller's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from diffio_progress.core.auth import Caller, authenticate
from diffio_progress.core.errors import KeyRefused
from diffio_progress.core.webhook_access import check_may_write, check_same_user, target_key_id

from ..admission import Admission
from ..http_shell import Call, admitted_key
from ..store import Document
from .keys import KeyStore


@dataclass(frozen=True)
class Authorized:
    """A caller allowed to manage webhooks, and the key whose webhook it acts on."""

    caller: Caller
    api_key_id: str


class WebhookAccess:
    """Authenticates and authorizes one webhooks call; safe to share across threads."""

    def __init__(self, keys: KeyStore, admission: Admission, clock: Callable[[], datetime]) -> None:
        self.keys = keys
        self.admission = admission
        self.clock = clock

    def authorize(self, call: Call, requested: str | None) -> Authorized:
        """The caller and the target key id, or the 401/403/404/429 that stops the call."""
        context = call.exchange.log_fields
        key_hash, admitted = admitted_key(self.admission, call.headers, call.address, call.exchange)
        key_doc = self.keys.by_hash(key_hash)
        if key_doc is not None and isinstance(key_doc.get("keyId"), str):
            # Logged even when the key is refused: who still uses a revoked key matters.
            context["keyId"] = key_doc["keyId"]
        try:
            caller = authenticate(key_doc, self.clock())
            assert key_doc is not None
            check_may_write(key_doc)
        except KeyRefused as error:
            self.admission.refused(key_hash, error)
            raise
        self.admission.accepted(key_hash, admitted)
        context.update(keyId=caller.key_id, userId=caller.user_id)
        api_key_id = self._target(caller, key_doc, requested)
        context["apiKeyId"] = api_key_id
        return Authorized(caller, api_key_id)

    def _target(self, caller: Caller, key_doc: Document, requested: str | None) -> str:
        api_key_id = target_key_id(caller, key_doc, requested)
        if api_key_id != caller.key_id:
            check_same_user(caller, self.keys.by_key_id(api_key_id))
        return api_key_id
