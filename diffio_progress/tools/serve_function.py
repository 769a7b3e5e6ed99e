"""functions-framework's own app and server for a target, keeping idle connections open longer.

    python -m diffio_progress.tools.serve_function --target T --source main.py --port 8080
    python -m diffio_progress.tools.serve_function --routes --source main.py --port 8080

It is what the ``functions-framework`` command runs (``create_app``, then
gunicorn through ``create_server``), with one change: gunicorn's keep-alive.
Its default is 2 s, exactly the official SDK's poll interval, so the SDK's next
poll on a kept connection races the server closing it, and now and then fails
with "Server disconnected without sending a response". In production Google's
front end holds the client's connection and nothing here is needed; locally
the server itself keeps an idle connection for ``KEEPALIVE_SECONDS``.
With ``--routes`` it serves every function of the routing table (firebase.json)
behind one address, each on its own path, as Firebase Hosting does deployed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import functions_framework
from functions_framework._http import create_server

# Longer than any poll interval a client would choose (nginx's default, too).
KEEPALIVE_SECONDS = 75


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m diffio_progress.tools.serve_function")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--target")
    target.add_argument("--routes", action="store_true", help="every path of firebase.json")
    parser.add_argument("--source", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    if args.routes:
        from .router import build_router

        app: Any = build_router(Path(args.source))
    else:
        app = functions_framework.create_app(args.target, args.source)  # type: ignore[no-untyped-call]
    server = create_server(app, False, keepalive=KEEPALIVE_SECONDS)  # type: ignore[no-untyped-call]
    server.run(args.host, args.port)


if __name__ == "__main__":
    main()
