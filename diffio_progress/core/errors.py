"""Every error the API answers: one ``ApiError`` subclass per stable code, declared here once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar


class ApiError(Exception):
    """An error answered to the client as ``{"error": message, "code": code}``.

    Each subclass is one ``code``: stable snake_case that clients may branch on,
    with its HTTP ``status``. ``message`` is human text in the words of the API
    reference (the official SDK shows it); a subclass gives the usual one.
    Code branches on the type (``except GenerationNotFound``), never on the string.
    """

    status: ClassVar[int]
    code: ClassVar[str]
    default_message: ClassVar[str]

    def __init__(self, message: str | None = None, headers: Mapping[str, str] | None = None):
        self.message = message if message is not None else self.default_message
        self.headers = dict(headers or {})
        super().__init__(self.message)

    def __copy__(self) -> ApiError:
        # The same answer, raised again elsewhere (another thread) with its own traceback.
        clone = type(self).__new__(type(self), *self.args)
        clone.message, clone.headers = self.message, dict(self.headers)
        return clone

    def body(self) -> dict[str, str]:
        return {"error": self.message, "code": self.code}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.code!r}, {self.message!r})"


class MethodNotAllowed(ApiError):
    status, code, default_message = 405, "method_not_allowed", "Method not allowed; use POST"

    def __init__(self, allowed: Sequence[str]) -> None:
        super().__init__(headers={"Allow": ", ".join(allowed)})


class BodyTooLarge(ApiError):
    status, code, default_message = 413, "body_too_large", "Request body is too large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body must be at most {limit} bytes")


class InvalidJson(ApiError):
    status, code, default_message = 400, "invalid_json", "Invalid JSON body"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(f"{self.default_message}: {detail}" if detail else None)


class InvalidBody(ApiError):
    status, code = 400, "invalid_body"
    default_message = "Invalid JSON body: expected a JSON object"


class GenerationIdRequired(ApiError):
    status, code = 400, "generation_id_required"
    default_message = "generationId must be provided as a string"


class InvalidGenerationId(ApiError):
    status, code, default_message = 400, "invalid_generation_id", "generationId is not a valid id"


class InvalidApiProjectId(ApiError):
    status, code, default_message = 400, "invalid_api_project_id", "apiProjectId is not a valid id"
    NOT_A_STRING = "apiProjectId must be a string when provided"


class ApiKeyMissing(ApiError):
    status, code, default_message = 401, "api_key_missing", "Missing API key"


class KeyRefused(ApiError):
    """The key cannot read (a lookup decided it): an instance remembers it for a while."""


class ApiKeyInvalid(KeyRefused):
    status, code, default_message = 401, "api_key_invalid", "Invalid API key"


class ApiKeyInactive(KeyRefused):
    status, code, default_message = 403, "api_key_inactive", "API key is not active"


class ApiKeyExpired(KeyRefused):
    status, code = 403, "api_key_expired"
    default_message = "API key is not active: it has expired"


class PermissionDenied(KeyRefused):
    status, code, default_message = 403, "permission_denied", "API key is missing read permission"


class NotOwner(ApiError):
    status, code = 403, "forbidden"
    default_message = "API key does not own the project or generation"


class GenerationNotFound(ApiError):
    status, code, default_message = 404, "generation_not_found", "Generation not found"


class InvalidMode(ApiError):
    status, code, default_message = 400, "invalid_mode", "mode must be test or live"


class InvalidUrl(ApiError):
    """The webhook URL; the message says which rule it breaks."""

    status, code, default_message = 400, "invalid_url", "url is not usable"


class InvalidEventTypes(ApiError):
    status, code = 400, "invalid_event_types"
    default_message = "eventTypes must be a non-empty list of the four event types"


class InvalidEventType(ApiError):
    status, code = 400, "invalid_event_type"
    default_message = "eventType must be one of the four event types"


class InvalidApiKeyId(ApiError):
    status, code, default_message = 400, "invalid_api_key_id", "apiKeyId must be a non-empty string"


class InvalidSamplePayload(ApiError):
    status, code, default_message = 400, "invalid_sample_payload", "samplePayload is not valid"


class ApiKeyNotFound(ApiError):
    """A key id that is missing and another user's are this same answer."""

    status, code, default_message = 404, "api_key_not_found", "API key not found"


class WebhookNotConfigured(ApiError):
    status, code = 404, "webhook_not_configured"
    default_message = (
        "No webhook endpoint is configured for this API key and mode that takes this event type"
    )
    NO_ENDPOINT = "No webhook endpoint is configured for this API key and mode"


class WebhooksDisabled(ApiError):
    status, code = 503, "webhooks_disabled"
    default_message = "Webhooks are turned off here (WEBHOOK_SINK=off)"


class InvalidStatus(ApiError):
    status, code = 400, "invalid_status"
    default_message = "status must be one of pending, delivered, failed, skipped"


class InvalidSince(ApiError):
    status, code, default_message = 400, "invalid_since", "since must be an RFC 3339 time"


class InvalidUntil(ApiError):
    status, code = 400, "invalid_until"
    default_message = "until must be an RFC 3339 time, not before since"


class InvalidLimit(ApiError):
    status, code = 400, "invalid_limit"
    default_message = "limit must be a whole number from 1 to 100"


class InvalidCursor(ApiError):
    status, code = 400, "invalid_cursor"
    default_message = "cursor must be the nextCursor of a previous page with the same filters"


class InvalidEventId(ApiError):
    status, code, default_message = 400, "invalid_event_id", "eventId must be an evt_... string"


class EventNotFound(ApiError):
    """Another key's event, another mode's, or one older than the log's window: the same 404."""

    status, code, default_message = 404, "event_not_found", "Event not found"


class WebhookDisabled(ApiError):
    status, code = 409, "webhook_disabled"
    default_message = "The webhook endpoint is disabled; configure enables it again"


class DeliveryInProgress(ApiError):
    status, code = 409, "delivery_in_progress"
    default_message = "This event is being delivered right now; retry shortly"


class RateLimited(ApiError):
    """429 with ``Retry-After`` in whole seconds and the RateLimit fields; no read was made."""

    status, code, default_message = 429, "rate_limited", "Too many requests; retry later"
    PER_KEY = "Too many requests for this API key; retry later"
    PER_ADDRESS = "Too many requests with unknown API keys from this address; retry later"
    SYNC_PER_KEY = "Too many webhook sends or lookups in flight for this API key; retry later"

    def __init__(self, message: str, retry_after: int, headers: Mapping[str, str]) -> None:
        super().__init__(message, {"Retry-After": str(retry_after), **headers})


class InternalError(ApiError):
    """500: a bug; the stack trace went to the log, the client learns nothing internal."""

    status, code, default_message = 500, "internal_error", "Internal error"


class Unavailable(ApiError):
    """503: Firestore could not be reached within its deadline; retrying soon may work."""

    status, code = 503, "unavailable"
    default_message = "Service temporarily unavailable; retry shortly"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


class StoreUnavailable(Exception):
    """Firestore could not be reached within the deadline; answered as ``Unavailable``."""


class SecretUnavailable(Exception):
    """A sealed signing secret that cannot be opened here; the message names no secret.

    A send to its endpoint is a failed attempt of ours (``failureKind`` ``ours``), not a 5xx.
    """
