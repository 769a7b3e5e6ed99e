"""The stand-in's control route: another process flips an execution, the real client sees it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from diffio_progress.core.stages import LiveExecution
from diffio_progress.functions.cloud_run import executions_client, live_execution
from diffio_progress.tools.cloud_run_standin import (
    CloudRunStandIn,
    execution_name,
    set_state,
)

NAME = execution_name("inference-x7k2p", job="inference")


@pytest.fixture
def standin() -> Iterator[CloudRunStandIn]:
    with CloudRunStandIn() as server:
        yield server


def live(standin: CloudRunStandIn) -> LiveExecution:
    return live_execution(executions_client(standin.host_port).get_execution(name=NAME))


@pytest.mark.parametrize(
    ("state", "message", "expected"),
    [
        ("PENDING", None, LiveExecution("PENDING", "Waiting for resources")),
        ("RUNNING", None, LiveExecution("RUNNING", "Tasks are running")),
        ("SUCCEEDED", None, LiveExecution("SUCCEEDED", "Execution completed")),
        (
            "FAILED",
            None,
            LiveExecution("FAILED", "Task worker-0 exited with code 137: out of memory"),
        ),
        ("FAILED", "Task timed out", LiveExecution("FAILED", "Task timed out")),
        ("CANCELLED", None, LiveExecution("CANCELLED", "The execution was cancelled")),
    ],
)
def test_a_state_set_through_the_control_route_is_what_the_client_reads(
    standin: CloudRunStandIn, state: str, message: str | None, expected: LiveExecution
) -> None:
    set_state(standin.host_port, NAME, "RUNNING")
    set_state(standin.host_port, NAME, state, message)
    assert live(standin) == expected
    assert live(standin) == expected  # and keeps reporting it
    assert standin.requests(NAME) == 2  # control calls are not counted as lookups


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"state": "EXPLODED"}', b'{"state": "FAILED", "message": 7}', b"{}"],
)
def test_a_bad_control_request_is_a_400_and_changes_nothing(
    standin: CloudRunStandIn, body: bytes
) -> None:
    set_state(standin.host_port, NAME, "RUNNING")
    response = httpx.put(f"http://{standin.host_port}/control/v2/{NAME}", content=body)
    assert response.status_code == 400
    assert "PUT /control/v2/{name}" in response.json()["error"]["message"]
    assert live(standin).job_state == "RUNNING"


def test_set_state_without_a_stand_in_raises_oserror() -> None:
    with CloudRunStandIn() as gone:
        host_port = gone.host_port
    with pytest.raises(OSError):
        set_state(host_port, NAME, "FAILED")
