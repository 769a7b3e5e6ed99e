"""Who may configure and test which webhook, pure: decisions on API-key documents.

webhooks-api.md §2. The caller's key needs ``permissions.webhooksWrite`` or
``permissions.admin`` (403 ``permission_denied``). ``apiKeyId`` defaults to the
caller's own key; another key needs ``admin`` (403 ``forbidden``) and must be a
key of the same user: one that is missing or another user's is the same 404
``api_key_not_found``, so the answer never tells whether a key id exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .auth import Caller, permission
from .errors import ApiKeyNotFound, NotOwner, PermissionDenied


def check_may_write(key_doc: Mapping[str, Any]) -> None:
    """403 ``permission_denied`` unless the key may manage webhooks."""
    if not (permission(key_doc, "webhooksWrite") or permission(key_doc, "admin")):
        raise PermissionDenied("API key is missing the webhooks:write or admin permission")


def target_key_id(caller: Caller, key_doc: Mapping[str, Any], requested: str | None) -> str:
    """The ``apiKeyId`` the request acts on: the caller's own unless another is named.

    Naming another key needs ``admin`` (403 ``forbidden``); whether that key is
    the same user's is ``check_same_user``'s decision, once it has been read.
    """
    own = caller.key_id
    if requested is None or requested == own:
        if own is None:
            # A key document without keyId has no id a webhook could belong to.
            raise PermissionDenied("API key has no keyId")
        return own
    if not permission(key_doc, "admin"):
        raise NotOwner("Only an admin key may manage another key's webhook")
    return requested


def check_same_user(caller: Caller, found: Sequence[Mapping[str, Any]]) -> None:
    """404 ``api_key_not_found`` unless a key document found for the id is the caller's user's."""
    if not any(doc.get("userId") == caller.user_id for doc in found):
        raise ApiKeyNotFound()
