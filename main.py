"""Cloud Function entry points: the progress poll, the webhooks API, events, reaper, relay."""

import flask
import functions_framework
from cloudevents.http import CloudEvent

from diffio_progress.functions.connection_close import close_when_asked
from diffio_progress.functions.progress.wiring import default_handler

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


@functions_framework.http
def reap_stalled_jobs(request: flask.Request) -> flask.Response:
    # Imported here, not above: the progress poll's cold start never loads the
    # reaper, the Cloud Run client or the worker-side writer.
    from diffio_progress.functions.reaper.handler import default_reaper_handler

    return default_reaper_handler()(request)


@functions_framework.http
def relay_pending_deliveries(request: flask.Request) -> flask.Response:
    # Imported here: no other function's cold start loads the relay.
    from diffio_progress.functions.relay.handler import default_relay_handler

    return default_relay_handler()(request)


@functions_framework.http
def webhooks_configure(request: flask.Request) -> flask.Response:
    # Imported here: the progress poll's cold start never loads the webhooks modules.
    from diffio_progress.functions.webhooks.wiring import default_configure_handler

    return default_configure_handler()(request)


@functions_framework.http
def webhooks_send_test_event(request: flask.Request) -> flask.Response:
    from diffio_progress.functions.webhooks.wiring import default_test_event_handler

    return default_test_event_handler()(request)


@functions_framework.http
def webhooks_list_events(request: flask.Request) -> flask.Response:
    from diffio_progress.functions.webhooks.wiring import default_log_handler

    return default_log_handler("list_events")(request)


@functions_framework.http
def webhooks_list_attempts(request: flask.Request) -> flask.Response:
    from diffio_progress.functions.webhooks.wiring import default_log_handler

    return default_log_handler("list_attempts")(request)


@functions_framework.http
def webhooks_recover(request: flask.Request) -> flask.Response:
    from diffio_progress.functions.webhooks.wiring import default_log_handler

    return default_log_handler("recover")(request)


@functions_framework.http
def webhooks_resend(request: flask.Request) -> flask.Response:
    from diffio_progress.functions.webhooks.wiring import default_log_handler

    return default_log_handler("resend")(request)
