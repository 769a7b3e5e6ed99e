"""Cloud Function entry points: the progress endpoint (any path) and the status-change events."""

import flask
import functions_framework
from cloudevents.http import CloudEvent

from diffio_progress.functions.connection_close import close_when_asked
from diffio_progress.functions.wiring import default_handler

# functions-framework imports this module inside its app's context.
if flask.has_app_context():
    close_when_asked(flask.current_app)


@functions_framework.http
def get_generation_progress(request: flask.Request) -> flask.Response:
    return default_handler()(request)


@functions_framework.cloud_event
def on_generation_written(event: CloudEvent) -> None:
    # Imported here: the progress poll never loads the events' modules (cold start).
    from diffio_progress.functions.events.wiring import on_generation_written as handle

    handle(event)
