"""monitoring/'s event metrics read fields that the served event function really logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from diffio_progress.core.events import PROCESSING_EVENT, QUEUED_EVENT
from tests.functions.events.harness import Event, Harness, Writes
from tests.functions.events.receivers import Receiver
from tests.log_records import Records
from tests.monitoring.resources import matched_by_metrics, metrics_for
from tests.monitoring.served import served

TARGET = "on_generation_written"


def post(url: str, event: Event) -> int:
    headers, body = event
    return httpx.post(url, headers=headers, content=body, timeout=30).status_code


def test_each_event_metric_matches_the_lines_it_is_for_and_finds_its_fields(
    writes: Writes, harness: Harness, receiver: Receiver, server_log_dir: Path, firestore_host: str
) -> None:
    harness.endpoint(receiver.url)
    env = {
        "WEBHOOK_SINK": "direct",
        "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        "WEBHOOK_RETRY_SCHEDULE": "1ms",
    }
    with served(TARGET, firestore_host, server_log_dir, **env) as function:
        created = writes.generation()
        receiver.behaviour = "status:500"
        assert post(function.url, created) == 200  # the endpoint is down: scheduled
        receiver.behaviour = "ok"
        assert post(function.url, created) == 200  # a duplicate finds queued due: delivered
        assert post(function.url, writes.job("inference", "running")) == 200
        headers, body = writes.job("inference", "completed", 100)
        stale = {**headers, "ce-time": "2020-01-01T00:00:00Z"}  # retried for years: given up
        assert post(function.url, (stale, body)) == 200
        made = function.entries()

    # deliveries_failed needs a delivery that fails for good: the next test has one.
    matched = matched_by_metrics(TARGET, made, skip={"deliveries_failed"})

    assert set(matched) == {
        "events_recorded",
        "events_delivered",
        "delivery_attempts_failed",
        "events_given_up",
    }
    recorded = [e["jsonPayload"]["recorded"] for e in matched["events_recorded"]]
    assert recorded == [QUEUED_EVENT, PROCESSING_EVENT]  # the label eventType reads it
    # One an event delivered, not one a call: the attempt lines of the two events.
    delivered = [e["jsonPayload"]["eventType"] for e in matched["events_delivered"]]
    assert delivered == [QUEUED_EVENT, PROCESSING_EVENT]
    [failed] = matched["delivery_attempts_failed"]  # the 500: rescheduled, the endpoint's
    assert failed["jsonPayload"]["failureKind"] == "endpoint"
    assert failed["jsonPayload"]["deliveryStatus"] == "pending"
    [given_up] = matched["events_given_up"]
    assert given_up["severity"] == "ERROR"


def test_a_delivery_failed_for_good_is_counted_by_its_failure_kind(
    writes: Writes, harness: Harness, receiver: Receiver, server_log_dir: Path, firestore_host: str
) -> None:
    harness.endpoint(receiver.url)
    env = {"WEBHOOK_SINK": "direct", "WEBHOOK_ALLOW_PRIVATE_URLS": "true"}
    with served(TARGET, firestore_host, server_log_dir, **env) as function:
        receiver.behaviour = "status:410"  # Gone: failed for good at once, the endpoint's
        post(function.url, writes.generation())
        made = function.entries()

    others = set(metrics_for(TARGET)) - {"deliveries_failed"}
    [failed] = matched_by_metrics(TARGET, made, skip=others)["deliveries_failed"]
    assert failed["jsonPayload"]["failureKind"] == "endpoint"
    assert failed["jsonPayload"]["httpStatus"] == 410


def test_a_failed_delivery_logs_the_age_of_the_oldest_undelivered_event(
    writes: Writes, harness: Harness, receiver: Receiver, event_logs: Records
) -> None:
    harness.endpoint(receiver.url)
    handler = harness.handler(webhook_sink="direct", webhook_allow_private_urls=True)
    receiver.behaviour = "status:503"
    harness.send(handler, writes.generation())  # generation.queued, recorded now
    later = datetime.now(UTC) + timedelta(hours=2)
    handler.clock = lambda: later  # the endpoint stays down for two hours
    assert handler.deliverer is not None
    handler.deliverer.clock = handler.clock

    harness.send(handler, writes.job("inference", "running"))  # processing, recorded now

    *_, failed = [r.fields for r in event_logs.at("WARNING") if "outcome" in r.fields]
    assert failed["recorded"] == PROCESSING_EVENT
    # The age of generation.queued, the oldest still waiting; not that of processing.
    assert 7190 < failed["oldestUndeliveredSeconds"] <= 7200 + 60
