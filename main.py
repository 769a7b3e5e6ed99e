"""Cloud Function entry points: the progress endpoint (any path) and the status-change events."""

import flask
import functions_framework
from cloudevents.http import CloudEvent

from diffio_progress.functions.wiring import default_handler


@functions_framework.http
def get_generation_progress(request: flask.Request) -> flask.Response:
    return default_handler()(request)


@functions_framework.cloud_event
def on_generation_written(event: CloudEvent) -> None:
    # Imported here: the progress poll never loads the events' modules (cold start).
    from diffio_progress.functions.events.wiring import on_generation_written as handle

    handle(event)
