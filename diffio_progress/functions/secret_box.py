"""Signing secrets at rest: AES-256-GCM under a fresh data key, that key wrapped by a key of ours.

webhooks-api.md §6. Envelope encryption: each secret gets its own random 256-bit
data key; the secret is sealed with it (AES-GCM, pyca/cryptography), and the data
key is wrapped by the key-encryption key: Cloud KMS in production
(``WEBHOOK_SECRETS_KMS_KEY``, ``kms_key.py``), a local 32-byte key in the local
world and tests (``WEBHOOK_SECRETS_LOCAL_KEY``, refused on Cloud Run). The
endpoint's id is the associated data of both layers, so a sealed secret copied
onto another endpoint does not open. Stored form, one string in the field that
held the plain secret (``secret``, ``previousSecret``)::

    enc1:<kind>:<wrapped data key, base64>:<12-byte nonce + ciphertext, base64>

A value that starts with ``whsec_`` is a plain secret from before; it still
opens (as itself) until ``webhooks encrypt-secrets`` seals it.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from cachetools import TTLCache
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from diffio_progress.core.endpoints import SECRET_PREFIX
from diffio_progress.core.errors import SecretUnavailable

from .config import (
    K_SERVICE,
    WEBHOOK_SECRETS_KMS_KEY,
    WEBHOOK_SECRETS_LOCAL_KEY,
    Settings,
)

SEALED_PREFIX = "enc1:"
SECRET_FIELDS = ("secret", "previousSecret")
_NONCE_BYTES = 12
# Opened data keys, so a delivery does not cost a KMS call per endpoint; a disabled KMS key
# stops opening secrets within this time.
_DATA_KEYS_KEPT, _DATA_KEY_SECONDS = 4096, 600.0


class KeyWrapper(Protocol):
    """The key-encryption key: wraps and unwraps data keys, bound to associated data."""

    kind: str

    def wrap(self, data_key: bytes, associated: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, associated: bytes) -> bytes: ...


class LocalKey:
    """A key-encryption key held in the process: for the local world and tests only."""

    kind = "local"

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError(f"{WEBHOOK_SECRETS_LOCAL_KEY} must be base64 of 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_base64(cls, text: str) -> LocalKey:
        try:
            return cls(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError):
            raise ValueError(f"{WEBHOOK_SECRETS_LOCAL_KEY} must be base64 of 32 bytes") from None

    def wrap(self, data_key: bytes, associated: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, associated)

    def unwrap(self, wrapped: bytes, associated: bytes) -> bytes:
        return self._aead.decrypt(wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], associated)


def new_local_key() -> str:
    """A fresh ``WEBHOOK_SECRETS_LOCAL_KEY`` value."""
    return base64.b64encode(os.urandom(32)).decode()


class SecretBox:
    """Seals and opens signing secrets for one endpoint id; safe to share across threads."""

    def __init__(self, wrapper: KeyWrapper) -> None:
        self.wrapper = wrapper
        self._data_keys: TTLCache[tuple[bytes, bytes], bytes] = TTLCache(
            _DATA_KEYS_KEPT, _DATA_KEY_SECONDS
        )
        self._lock = threading.Lock()

    def seal(self, endpoint_id: str, secret: str) -> str:
        """``secret`` sealed for ``endpoint_id``: the stored form."""
        associated = endpoint_id.encode("utf-8", "surrogatepass")
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + AESGCM(data_key).encrypt(nonce, secret.encode(), associated)
        wrapped = self.wrapper.wrap(data_key, associated)
        parts = (SEALED_PREFIX + self.wrapper.kind, _b64(wrapped), _b64(sealed))
        return ":".join(parts)

    def open(self, endpoint_id: str, stored: str) -> str:
        """The secret ``stored`` holds for ``endpoint_id``; ``SecretUnavailable`` otherwise."""
        if not is_sealed(stored):
            return stored  # a plain secret from before encryption
        try:
            _, kind, wrapped_text, sealed_text = stored.split(":")
            wrapped, sealed = base64.b64decode(wrapped_text), base64.b64decode(sealed_text)
        except (ValueError, binascii.Error):
            raise SecretUnavailable("the sealed secret is malformed") from None
        if kind != self.wrapper.kind:
            raise SecretUnavailable(f"the secret was sealed with a {kind} key, not this one")
        associated = endpoint_id.encode("utf-8", "surrogatepass")
        try:
            data_key = self._data_key(wrapped, associated)
            plain = AESGCM(data_key).decrypt(
                sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], associated
            )
        except (InvalidTag, ValueError):
            raise SecretUnavailable("the sealed secret does not open for this endpoint") from None
        return plain.decode()

    def seal_document(
        self,
        endpoint_id: str,
        document: Mapping[str, Any],
        seal: Callable[[str, str], str] | None = None,
    ) -> dict[str, Any]:
        """``document`` with every plain secret field sealed (by ``seal``, default ``self.seal``);
        sealed ones are kept."""
        seal = seal or self.seal
        sealed = dict(document)
        for name in SECRET_FIELDS:
            value = sealed.get(name)
            if isinstance(value, str) and not is_sealed(value):
                sealed[name] = seal(endpoint_id, value)
        return sealed

    def _data_key(self, wrapped: bytes, associated: bytes) -> bytes:
        with self._lock:
            kept = self._data_keys.get((wrapped, associated))
        if kept is not None:
            return kept
        data_key = self.wrapper.unwrap(wrapped, associated)
        with self._lock:
            self._data_keys[(wrapped, associated)] = data_key
        return data_key


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def is_plain(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SECRET_PREFIX)


def opened(box: SecretBox | None, endpoint_id: str, document: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` with its secret fields opened: what ``core.endpoints`` reads.

    Raises ``SecretUnavailable`` when a sealed one cannot be opened (or no key is set).
    """
    plain = dict(document)
    for name in SECRET_FIELDS:
        value = plain.get(name)
        if isinstance(value, str) and is_sealed(value):
            if box is None:
                raise SecretUnavailable(
                    f"no key to open sealed secrets: set {WEBHOOK_SECRETS_KMS_KEY}"
                )
            plain[name] = box.open(endpoint_id, value)
    return plain


def build_secret_box(settings: Settings) -> SecretBox | None:
    """The box the settings name; ``None`` with neither key (no secret can be sealed then)."""
    if settings.webhook_secrets_kms_key and settings.webhook_secrets_local_key:
        raise ValueError(f"set {WEBHOOK_SECRETS_KMS_KEY} or {WEBHOOK_SECRETS_LOCAL_KEY}, not both")
    if settings.webhook_secrets_local_key:
        if settings.on_cloud_run:
            raise ValueError(
                f"{WEBHOOK_SECRETS_LOCAL_KEY} is for the local world and tests; "
                f"{K_SERVICE} is set, so this is Cloud Run: use {WEBHOOK_SECRETS_KMS_KEY}"
            )
        return SecretBox(LocalKey.from_base64(settings.webhook_secrets_local_key))
    if settings.webhook_secrets_kms_key:
        from .kms_key import KmsKey

        return SecretBox(KmsKey(settings.webhook_secrets_kms_key))
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
