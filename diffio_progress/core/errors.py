"""The one error type of the API: an HTTP status, a stable code and a message."""

from __future__ import annotations

from collections.abc import Mapping


class ApiError(Exception):
    """An error answered to the client as ``{"error": message, "code": code}``.

    ``code`` is stable snake_case that clients may branch on; ``message`` is
    human text in the words of the API reference (the official SDK shows it).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def __copy__(self) -> ApiError:
        return ApiError(self.status, self.code, self.message, self.headers)

    def body(self) -> dict[str, str]:
        return {"error": self.message, "code": self.code}

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.code!r}, {self.message!r})"


class StoreUnavailable(Exception):
    """Firestore could not be reached within the deadline; answered with 503."""
