"""The two webhooks requests, pure: a JSON body into a validated request, or a 400 with its code.

webhooks-api.md §3-4: each row of their tables is one check here, in the
table's order, each with its stable code. Only the URL's form is checked here;
whether its host resolves to a public address is decided by the caller, after
authentication (so an anonymous caller cannot make us resolve names).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import (
    InvalidApiKeyId,
    InvalidBody,
    InvalidEventType,
    InvalidEventTypes,
    InvalidMode,
    InvalidSamplePayload,
    InvalidUrl,
)
from .events import EVENT_TYPES
from .ssrf import MAX_URL_CHARS, UrlRefused, WebhookUrl, parse_webhook_url

MODES = ("test", "live")
# samplePayload's keys, and whether each may also be null (webhooks-api.md §4).
SAMPLE_FIELDS: dict[str, tuple[type, bool]] = {
    "apiProjectId": (str, False),
    "generationId": (str, False),
    "hasVideo": (bool, False),
    "modelKey": (str, True),
    "error": (str, True),
    "errorDetails": (str, True),
}


@dataclass(frozen=True)
class ConfigureRequest:
    """``POST /v1/webhooks/configure``, validated."""

    mode: str
    url: WebhookUrl
    event_types: tuple[str, ...]
    api_key_id: str | None = None
    rotate_secret: bool = False


@dataclass(frozen=True)
class TestEventRequest:
    """``POST /v1/webhooks/send_test_event``, validated."""

    event_type: str
    mode: str
    api_key_id: str | None = None
    sample: Mapping[str, Any] | None = None


def parse_configure(data: Mapping[str, Any], allow_private: bool) -> ConfigureRequest:
    """The configure request in ``data``, or ``ApiError`` 400 naming the first bad field."""
    mode = parse_mode(data)
    url = parse_url(data.get("url"), allow_private)
    event_types = _event_types(data.get("eventTypes"))
    api_key_id = parse_api_key_id(data)
    rotate = data.get("rotateSecret", False)
    if not isinstance(rotate, bool):
        raise InvalidBody("rotateSecret must be true or false when provided")
    return ConfigureRequest(mode, url, event_types, api_key_id, rotate)


def parse_test_event(data: Mapping[str, Any]) -> TestEventRequest:
    """The test-event request in ``data``, or ``ApiError`` 400 naming the first bad field."""
    event_type = data.get("eventType")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        raise InvalidEventType(f"eventType must be one of {', '.join(EVENT_TYPES)}")
    mode = parse_mode(data)
    api_key_id = parse_api_key_id(data)
    sample = _sample(data)
    return TestEventRequest(event_type, mode, api_key_id, sample)


def parse_url(url: object, allow_private: bool) -> WebhookUrl:
    """A webhook URL's form (webhooks-api.md §3); 400 ``invalid_url`` saying which rule."""
    if not isinstance(url, str) or not url:
        raise invalid_url("url must be provided as a string")
    if len(url) > MAX_URL_CHARS:
        raise invalid_url(f"url must be at most {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise invalid_url("url does not parse") from None
    if not parts.scheme or not parts.netloc:
        raise invalid_url("url must be absolute, such as https://example.com/hook")
    try:
        return parse_webhook_url(url, allow_private)
    except UrlRefused as refused:
        raise invalid_url(str(refused)) from None


def invalid_url(message: str) -> InvalidUrl:
    return InvalidUrl(message)


def parse_mode(data: Mapping[str, Any]) -> str:
    mode = data.get("mode")
    if not isinstance(mode, str) or mode not in MODES:
        raise InvalidMode()
    return mode


def _event_types(value: object) -> tuple[str, ...]:
    message = f"eventTypes must be a non-empty list of {', '.join(EVENT_TYPES)}"
    if not isinstance(value, list) or not value:
        raise InvalidEventTypes(message)
    if not all(isinstance(t, str) and t in EVENT_TYPES for t in value):
        raise InvalidEventTypes(message)
    return tuple(dict.fromkeys(value))  # repeats collapse; the client's order stays


def parse_api_key_id(data: Mapping[str, Any]) -> str | None:
    if "apiKeyId" not in data:
        return None
    value = data["apiKeyId"]
    if not isinstance(value, str) or not value:
        raise InvalidApiKeyId()
    return value


def _sample(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if "samplePayload" not in data:
        return None
    sample = data["samplePayload"]
    if not isinstance(sample, dict):
        raise _bad_sample("samplePayload must be an object")
    for name, value in sample.items():
        if name not in SAMPLE_FIELDS:
            raise _bad_sample(f"samplePayload may not set {name}")
        kind, nullable = SAMPLE_FIELDS[name]
        if value is None and nullable:
            continue
        # bool is an int in Python, and a JSON true is never a string: exact types only.
        if type(value) is not kind:
            raise _bad_sample(f"samplePayload.{name} has the wrong type")
    return sample


def _bad_sample(message: str) -> InvalidSamplePayload:
    return InvalidSamplePayload(message)
