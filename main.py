"""Cloud Function entry point for POST /v1/get_generation_progress (any path)."""

import flask
import functions_framework

from diffio_progress.functions.wiring import default_handler


@functions_framework.http
def get_generation_progress(request: flask.Request) -> flask.Response:
    return default_handler()(request)
