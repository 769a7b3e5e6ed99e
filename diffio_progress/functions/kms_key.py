"""The production key-encryption key: a Cloud KMS key, through Google's ``google-cloud-kms`` client.

Only data keys cross to KMS (32 bytes each, wrapped once per sealed secret and
unwrapped at most once per ``secret_box``'s cache period per instance), each
bound to its endpoint's id as additional authenticated data. Who may unwrap is
IAM on the key: the event function's, the relay's and the webhooks API's
identities (``deploy/setup.sh``). Imported only when ``WEBHOOK_SECRETS_KMS_KEY``
is set, so the client's import is never paid elsewhere.
"""

from __future__ import annotations

import re
from typing import Any

from google.api_core import exceptions as google_exceptions
from google.cloud import kms_v1

from diffio_progress.core.errors import SecretUnavailable, StoreUnavailable

from .config import WEBHOOK_SECRETS_KMS_KEY

KEY_NAME = re.compile(r"projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+")
# One try per call: a slow KMS fails this attempt (a delivery is retried; configure is a 503).
TIMEOUT_SECONDS = 5.0


class KmsKey:
    """Wraps and unwraps data keys with one Cloud KMS symmetric key; safe to share."""

    kind = "kms"

    def __init__(self, name: str, client: Any = None) -> None:
        if not KEY_NAME.fullmatch(name):
            raise ValueError(
                f"{WEBHOOK_SECRETS_KMS_KEY} must be "
                f"projects/P/locations/L/keyRings/R/cryptoKeys/K, got {name!r}"
            )
        self.name = name
        self._client = client or kms_v1.KeyManagementServiceClient()

    def wrap(self, data_key: bytes, associated: bytes) -> bytes:
        request = {"name": self.name, "plaintext": data_key}
        request["additional_authenticated_data"] = associated
        try:
            response = self._client.encrypt(request=request, retry=None, timeout=TIMEOUT_SECONDS)
        except google_exceptions.GoogleAPIError as error:
            raise StoreUnavailable(f"Cloud KMS encrypt failed: {type(error).__name__}") from None
        return bytes(response.ciphertext)

    def unwrap(self, wrapped: bytes, associated: bytes) -> bytes:
        request = {"name": self.name, "ciphertext": wrapped}
        request["additional_authenticated_data"] = associated
        try:
            response = self._client.decrypt(request=request, retry=None, timeout=TIMEOUT_SECONDS)
        except google_exceptions.GoogleAPIError as error:
            raise SecretUnavailable(f"Cloud KMS decrypt failed: {type(error).__name__}") from None
        return bytes(response.plaintext)
