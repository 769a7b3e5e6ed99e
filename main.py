"""Cloud Function entry point for POST /v1/get_generation_progress (any path)."""

import flask
import functions_framework

from diffio_progress.functions.connection_close import close_when_asked
from diffio_progress.functions.wiring import default_handler

# functions-framework imports this module inside its app's context.
if flask.has_app_context():
    close_when_asked(flask.current_app)


@functions_framework.http
def get_generation_progress(request: flask.Request) -> flask.Response:
    return default_handler()(request)
