"""Cloud Function entry points: the progress poll (any path) and the reaper of dead workers."""

import flask
import functions_framework

from diffio_progress.functions.wiring import default_handler


@functions_framework.http
def get_generation_progress(request: flask.Request) -> flask.Response:
    return default_handler()(request)


@functions_framework.http
def reap_stalled_jobs(request: flask.Request) -> flask.Response:
    # Imported here, not above: the progress poll's cold start never loads the
    # reaper, the Cloud Run client or the worker-side writer.
    from diffio_progress.functions.reaper_handler import default_reaper_handler

    return default_reaper_handler()(request)
