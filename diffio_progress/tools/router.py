"""The local stand-in of the deployed routing: firebase.json's ``hosting.rewrites``, in one server.

The repository keeps one routing table, the Hosting rewrites in firebase.json,
mapping each public path to its function. Deployed, Firebase Hosting applies
it; locally this WSGI app does: each path goes to its own functions-framework
app of main.py (as its own function would answer it), and any other path is
answered 404 ``not_found`` in the API's JSON error format.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "firebase.json"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def routes(config: Path = CONFIG) -> dict[str, str]:
    """Public path -> function name, from ``hosting.rewrites`` of ``config``."""
    rewrites = json.loads(config.read_text())["hosting"]["rewrites"]
    return {r["source"]: r["function"]["functionId"] for r in rewrites if "function" in r}


class Router:
    """Dispatches a request by its path to the function the routing table names."""

    def __init__(self, apps: dict[str, WsgiApp]) -> None:
        self.apps = apps

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        app = self.apps.get(environ.get("PATH_INFO") or "/")
        if app is not None:
            return app(environ, start_response)
        body = json.dumps({"error": "Not found", "code": "not_found"}).encode()
        start_response(
            "404 Not Found",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Access-Control-Allow-Origin", "*"),
            ],
        )
        return [body]


def build_router(source: Path, config: Path = CONFIG) -> Any:
    """A Flask app (so functions-framework serves it with gunicorn, as it serves a function)
    that hands each request to ``Router``: one functions-framework app of ``source`` per
    routed function."""
    import flask
    import functions_framework

    table = routes(config)
    built = {
        target: functions_framework.create_app(target, str(source))  # type: ignore[no-untyped-call]
        for target in set(table.values())
    }
    app = flask.Flask("routes")
    app.wsgi_app = Router({path: built[target] for path, target in table.items()})  # type: ignore[method-assign]
    return app
