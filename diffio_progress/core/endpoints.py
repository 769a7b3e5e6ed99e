"""Direct-sink endpoints, pure: a ``webhookEndpoints`` document read as an endpoint, or why not.

events-contract.md §4: ``apiKeyId``, ``url``, ``secret`` (``whsec_`` + base64),
``eventTypes`` (empty or missing = all), ``disabled`` (missing = enabled). A
malformed endpoint is refused with a reason that names no secret.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .events import EVENT_TYPES
from .ssrf import UrlRefused, WebhookUrl, parse_webhook_url
from .webhook_records import signing_secrets

ENDPOINTS = "webhookEndpoints"
SECRET_PREFIX = "whsec_"
# Svix's own secrets are 24 random bytes; custom ones are 24 to 75 bytes.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 75
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class EndpointRefused(ValueError):
    """An endpoint document that cannot be delivered to; the message is safe to log."""


@dataclass(frozen=True)
class Endpoint:
    endpoint_id: str
    url: WebhookUrl
    secret: str = field(repr=False)  # never printed
    event_types: frozenset[str] = frozenset()  # empty: every type
    # A rotation's previous secret, while it still signs (webhooks-api.md §3).
    previous_secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret a delivery is signed with: the current one first."""
        return (self.secret, *self.previous_secrets)

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


def is_enabled(document: Mapping[str, Any]) -> bool:
    """``disabled`` missing or false; any other value fails closed (not enabled)."""
    return document.get("disabled", False) is False


def check_secret(secret: object) -> str:
    """A signing secret in Svix's form, or ``EndpointRefused`` (whose message has no secret)."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise EndpointRefused(f"secret is missing or does not start with {SECRET_PREFIX}")
    encoded = secret[len(SECRET_PREFIX) :]
    if not _BASE64.fullmatch(encoded):
        raise EndpointRefused("secret is not base64")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise EndpointRefused("secret is not base64") from None
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        raise EndpointRefused(
            f"secret must encode {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, not {len(raw)}"
        )
    return secret


def read_endpoint(
    endpoint_id: str,
    document: Mapping[str, Any],
    allow_private: bool,
    now: datetime | None = None,
) -> Endpoint:
    """The endpoint a document describes, or ``EndpointRefused`` saying why not.

    With ``now``, a rotation's previous secret signs too until it expires.
    """
    try:
        url = parse_webhook_url(document.get("url"), allow_private)
    except UrlRefused as refused:
        raise EndpointRefused(str(refused)) from None
    secret = check_secret(document.get("secret"))
    types = event_types(document)
    previous: tuple[str, ...] = ()
    if now is not None:
        previous = tuple(s for s in signing_secrets(document, now) if s != secret)
    return Endpoint(endpoint_id, url, secret, types, previous)


def event_types(document: Mapping[str, Any]) -> frozenset[str]:
    """The types an endpoint takes (empty: every type), or ``EndpointRefused``."""
    types = document.get("eventTypes")
    if types is None:
        types = []
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise EndpointRefused("eventTypes is not a list of event types")
    unknown = sorted(set(types) - set(EVENT_TYPES))
    if unknown:
        raise EndpointRefused(f"eventTypes has unknown types: {', '.join(unknown)}")
    return frozenset(types)


def wants(document: Mapping[str, Any], event_type: str) -> bool:
    """Whether an endpoint document takes ``event_type``; a malformed list takes nothing."""
    try:
        types = event_types(document)
    except EndpointRefused:
        return False
    return not types or event_type in types
