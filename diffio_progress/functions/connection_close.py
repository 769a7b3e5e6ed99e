"""A response the function marks ``Connection: close`` really closes its connection.

gunicorn (which functions-framework serves with) drops hop-by-hop headers that
an application sets and decides keep-alive itself, so after a 413 it would
still promise ``keep-alive`` and then drop the connection while unread body
bytes sit on it. This WSGI middleware asks the server to close instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _asks_to_close(headers: Iterable[tuple[str, str]]) -> bool:
    return any(k.lower() == "connection" and v.strip().lower() == "close" for k, v in headers)


class CloseWhenAsked:
    """Wraps a WSGI app; calls the server's ``force_close`` for a ``Connection: close`` answer.

    Servers that honour the header themselves (werkzeug's) need nothing; the
    server's ``start_response`` is a bound method of its response under gunicorn.
    """

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if _asks_to_close(headers):
                force_close = getattr(
                    getattr(start_response, "__self__", None), "force_close", None
                )
                if callable(force_close):
                    force_close()
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def close_when_asked(app: Any) -> None:
    """Install the middleware on a Flask app once."""
    if not isinstance(app.wsgi_app, CloseWhenAsked):
        app.wsgi_app = CloseWhenAsked(app.wsgi_app)
