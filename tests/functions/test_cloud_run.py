"""Live Cloud Run state: the mapping table, the deadline, degrading, caching, the switch.

The real ``run_v2.ExecutionsClient`` talks over HTTP to the local stand-in
(diffio_progress/tools/cloud_run_standin.py); the function reads Firestore on the emulator.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.cloud import run_v2

from diffio_progress.core.stages import LiveExecution
from diffio_progress.functions.cloud_run import (
    CloudRunExecutions,
    LookupFailure,
    executions_client,
    live_execution,
)
from diffio_progress.functions.progress.live_states import PollLookup, warn_failed_lookup
from diffio_progress.functions.reaper.lookups import ReaperLookup
from diffio_progress.tools import cloud_run_standin as standin_replies
from diffio_progress.tools.cloud_run_standin import CloudRunStandIn, Reply
from tests.log_records import Records, kept
from tests.races import race
from tests.seed import Seeder

PATH = "/v1/get_generation_progress"
STORED_RUNNING: dict[str, Any] = {
    "jobId": "job-7",
    "jobState": "RUNNING",
    "status": "running",
    "progress": 40,
    "statusMessage": "Denoising",
}
STORED_RUNNING_STAGE = {**STORED_RUNNING, "error": None, "errorDetails": None}
OOM = "Task worker-0 exited with code 137: out of memory"
# Generous: the bound under test is the deadline, not the machine's speed.
MARGIN = 2.0

Cond = run_v2.Condition.State


# -- the mapping, as a pure function -----------------------------------------


def _execution(*conditions: tuple[str, Any, str], running: int = 0, cancelled: int = 0) -> Any:
    return run_v2.Execution(
        conditions=[run_v2.Condition(type_=t, state=s, message=m) for t, s, m in conditions],
        running_count=running,
        cancelled_count=cancelled,
    )


@pytest.mark.parametrize(
    ("execution", "expected"),
    [
        pytest.param(
            _execution(("Completed", Cond.CONDITION_SUCCEEDED, "done")),
            LiveExecution("SUCCEEDED", "done"),
            id="succeeded",
        ),
        pytest.param(
            _execution(("Completed", Cond.CONDITION_SUCCEEDED, ""), cancelled=1),
            LiveExecution("SUCCEEDED", None),
            id="succeeded-even-with-cancelled-tasks",
        ),
        pytest.param(
            _execution(("Completed", Cond.CONDITION_FAILED, "stopped"), cancelled=2),
            LiveExecution("CANCELLED", "stopped"),
            id="failed-with-cancelled-tasks-is-cancelled",
        ),
        pytest.param(
            _execution(("Completed", Cond.CONDITION_FAILED, OOM)),
            LiveExecution("FAILED", OOM),
            id="failed",
        ),
        pytest.param(
            _execution(("Completed", Cond.CONDITION_FAILED, OOM), running=1),
            LiveExecution("FAILED", OOM),
            id="failed-although-a-task-still-runs",
        ),
        pytest.param(
            _execution(("Completed", Cond.CONDITION_RECONCILING, "busy"), running=3),
            LiveExecution("RUNNING", "busy"),
            id="running",
        ),
        pytest.param(
            _execution(("Completed", Cond.CONDITION_PENDING, "waiting")),
            LiveExecution("PENDING", "waiting"),
            id="pending",
        ),
        pytest.param(
            _execution(running=1), LiveExecution("RUNNING", None), id="no-condition-running"
        ),
        pytest.param(_execution(), LiveExecution("PENDING", None), id="no-condition-pending"),
        pytest.param(
            _execution(("Ready", Cond.CONDITION_FAILED, "other"), cancelled=1),
            LiveExecution("PENDING", None),
            id="other-conditions-do-not-count",
        ),
        pytest.param(
            _execution(("ResourcesAvailable", Cond.CONDITION_SUCCEEDED, "ok"), running=1),
            LiveExecution("RUNNING", None),
            id="only-completed-condition-counts",
        ),
    ],
)
def test_execution_maps_to_job_state_by_the_contract_table(
    execution: run_v2.Execution, expected: LiveExecution
) -> None:
    assert live_execution(execution) == expected


# -- fixtures and helpers ----------------------------------------------------


@pytest.fixture
def standin() -> Iterator[CloudRunStandIn]:
    with CloudRunStandIn() as server:
        yield server


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cloud_run_warnings() -> Iterator[list[logging.LogRecord]]:
    """Warnings of the lookup modules (the package logger does not propagate to the root)."""
    loggers = ("diffio_progress.functions.cloud_run", "diffio_progress.functions.progress")
    with kept(Records(), *loggers) as handler:
        yield handler.records


def new_execution(label: str) -> str:
    return standin_replies.execution_name(f"{label}-{uuid.uuid4().hex[:10]}")


def scripted(standin: CloudRunStandIn, label: str, make: Callable[[str], Reply]) -> str:
    name = new_execution(label)
    return standin.script(name, make(name))


def executions_for(
    standin: CloudRunStandIn, deadline: float = 2.0, **kwargs: Any
) -> CloudRunExecutions:
    return CloudRunExecutions(
        deadline=deadline,
        cache_ttl=kwargs.pop("cache_ttl", 5.0),
        client_factory=lambda: executions_client(standin.host_port),
        **kwargs,
    )


def lookup_for(standin: CloudRunStandIn, deadline: float = 2.0, **kwargs: Any) -> PollLookup:
    """The poll's lookup, warning as deployed."""
    return PollLookup(executions_for(standin, deadline, on_failure=warn_failed_lookup, **kwargs))


def in_order_for(standin: CloudRunStandIn, deadline: float = 2.0, **kwargs: Any) -> ReaperLookup:
    """The reaper's lookup, as deployed."""
    return ReaperLookup(executions_for(standin, deadline, **kwargs))


def seed_running_stage(
    seed: Seeder, execution: str, *, project: str | None = None, **job: Any
) -> tuple[str, str, str]:
    """An audio generation whose inference stage is stored ``running`` with ``execution``."""
    project = project or f"proj-{uuid.uuid4().hex[:8]}"
    generation = f"gen-{uuid.uuid4().hex[:8]}"
    key = seed.world(project, generation, audioOriginalMp3Ready=True)
    fields = {**STORED_RUNNING, "executionName": execution, **job}
    seed.job(project, generation, "inference", **fields)
    return key, project, generation


def body_of(project: str, generation: str) -> dict[str, str]:
    return {"generationId": generation, "apiProjectId": project}


def poll_served(base_url: str, key: str, project: str, generation: str) -> httpx.Response:
    return httpx.post(
        base_url + PATH, json=body_of(project, generation), headers={"X-Api-Key": key}, timeout=30
    )


def warning_lines(log_file: Path, execution: str) -> list[str]:
    return [
        line
        for line in log_file.read_text().splitlines()
        if '"WARNING"' in line and execution in line
    ]


# -- the lookup itself, against the stand-in ----------------------------------


def test_terminal_state_is_asked_for_once_ever(standin: CloudRunStandIn) -> None:
    clock = FakeClock()
    lookup = lookup_for(standin, timer=clock)
    name = scripted(standin, "failed", standin_replies.failed)
    for _ in range(3):
        assert lookup({"inference": name}) == {"inference": LiveExecution("FAILED", OOM)}
        clock.now += 86_400
    assert standin.requests(name) == 1


def test_running_state_is_asked_for_once_per_ttl_window(standin: CloudRunStandIn) -> None:
    clock = FakeClock()
    lookup = lookup_for(standin, cache_ttl=5.0, timer=clock)
    name = scripted(standin, "running", standin_replies.running)
    for _ in range(4):
        assert lookup({"inference": name})["inference"].job_state == "RUNNING"
        clock.now += 1
    assert standin.requests(name) == 1
    clock.now += 5
    assert lookup({"inference": name})["inference"].job_state == "RUNNING"
    assert lookup({"inference": name})["inference"].job_state == "RUNNING"
    assert standin.requests(name) == 2


def test_a_running_execution_that_ends_is_seen_after_the_ttl(standin: CloudRunStandIn) -> None:
    clock = FakeClock()
    lookup = lookup_for(standin, cache_ttl=5.0, timer=clock)
    name = new_execution("ends")
    standin.script(name, standin_replies.running(name), standin_replies.failed(name))
    assert lookup({"inference": name})["inference"].job_state == "RUNNING"
    clock.now += 6
    assert lookup({"inference": name})["inference"].job_state == "FAILED"


def test_concurrent_polls_of_one_execution_share_one_call(standin: CloudRunStandIn) -> None:
    lookup = lookup_for(standin)
    name = new_execution("burst")
    standin.script(name, standin_replies.slow(standin_replies.running(name), 0.5))
    results = race(*[lambda: lookup({"s": name})] * 12)
    assert [r["s"].job_state for r in results] == ["RUNNING"] * 12
    assert standin.requests(name) == 1


def test_lookups_of_one_request_run_concurrently(standin: CloudRunStandIn) -> None:
    # Each answers after 0.5 s; one after another, the third would miss the 1.5 s deadline.
    lookup = lookup_for(standin, deadline=1.5)
    names = {}
    for stage in ("preProcessing", "inference", "restoredVideo"):
        name = new_execution(stage)
        names[stage] = standin.script(
            name, standin_replies.slow(standin_replies.succeeded(name), 0.5)
        )
    assert {s: live.job_state for s, live in lookup(names).items()} == dict.fromkeys(
        names, "SUCCEEDED"
    )


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (standin_replies.http_error(500, "backend exploded"), "HTTP 500"),
        (standin_replies.http_error(403, "Permission 'run.executions.get' denied"), "HTTP 403"),
        (None, "HTTP 404"),  # not scripted: the stand-in answers 404 Not Found
    ],
    ids=["500", "403", "404"],
)
def test_failed_lookup_warns_once_and_is_remembered_for_the_ttl(
    standin: CloudRunStandIn,
    cloud_run_warnings: list[logging.LogRecord],
    reply: Reply | None,
    reason: str,
) -> None:
    clock = FakeClock()
    lookup = lookup_for(standin, timer=clock)
    name = new_execution("broken")
    if reply is not None:
        standin.script(name, reply)
    for _ in range(3):
        assert lookup({"inference": name}) == {}
    assert standin.requests(name) == 1
    [warning] = cloud_run_warnings
    assert name in warning.getMessage() and reason in warning.getMessage()
    clock.now += 6
    assert lookup({"inference": name}) == {}
    assert standin.requests(name) == 2


def test_hung_api_is_abandoned_at_the_deadline(
    standin: CloudRunStandIn, cloud_run_warnings: list[logging.LogRecord]
) -> None:
    lookup = lookup_for(standin, deadline=0.5)
    name = scripted(standin, "hang", standin_replies.hang)
    started = time.monotonic()
    assert lookup({"inference": name}) == {}
    assert time.monotonic() - started < 0.5 + MARGIN
    assert standin.requests(name) == 1
    # The call itself gives up at the deadline too and says so, once.
    give_up = time.monotonic() + 5
    while not cloud_run_warnings and time.monotonic() < give_up:
        time.sleep(0.05)
    [warning] = cloud_run_warnings
    assert name in warning.getMessage() and "no answer within 0.5 s" in warning.getMessage()


def test_unavailable_api_is_retried_within_the_deadline(standin: CloudRunStandIn) -> None:
    lookup = lookup_for(standin)
    name = new_execution("flaky")
    standin.script(name, standin_replies.http_error(503), standin_replies.succeeded(name))
    assert lookup({"inference": name})["inference"].job_state == "SUCCEEDED"
    assert standin.requests(name) == 2


def test_retries_stop_at_the_deadline(
    standin: CloudRunStandIn, cloud_run_warnings: list[logging.LogRecord]
) -> None:
    lookup = lookup_for(standin, deadline=1.0)
    name = new_execution("down")
    standin.script(name, standin_replies.http_error(503))
    started = time.monotonic()
    assert lookup({"inference": name}) == {}
    assert time.monotonic() - started < 1.0 + MARGIN
    assert standin.requests(name) >= 2
    give_up = time.monotonic() + 5
    while not cloud_run_warnings and time.monotonic() < give_up:
        time.sleep(0.05)
    [warning] = cloud_run_warnings
    message = warning.getMessage()
    # Why it gave up: the last 503, or, on a busy machine, the last retry that the deadline
    # cut off mid-request (its read timed out). Either way the warning names the execution.
    assert name in message and ("HTTP 503" in message or "timed out" in message), message


def test_client_is_created_lazily_once_for_all_threads(standin: CloudRunStandIn) -> None:
    made: list[run_v2.ExecutionsClient] = []

    def factory() -> run_v2.ExecutionsClient:
        time.sleep(0.05)  # widen the window in which two threads could both create one
        made.append(executions_client(standin.host_port))
        return made[-1]

    lookup = PollLookup(CloudRunExecutions(deadline=2.0, cache_ttl=0, client_factory=factory))
    assert made == []
    names = [scripted(standin, f"e{i}", standin_replies.running) for i in range(6)]
    race(*[partial(lookup, {"s": n}) for n in names * 2])
    assert len(made) == 1
    assert all(standin.requests(n) >= 1 for n in names)


# -- in order, for the reaper ---------------------------------------------------


def test_in_order_answers_a_state_or_a_reason_for_each_execution_in_order(
    standin: CloudRunStandIn, cloud_run_warnings: list[logging.LogRecord]
) -> None:
    lookup = in_order_for(standin)
    names = [
        scripted(standin, "failed", standin_replies.failed),
        scripted(standin, "running", standin_replies.running),
        standin.script(new_execution("e403"), standin_replies.http_error(403, "denied")),
        new_execution("e404"),  # unknown to the stand-in
        standin.script(new_execution("e500"), standin_replies.http_error(500, "boom")),
    ]
    outcomes = lookup(names)
    assert outcomes[:2] == [
        LiveExecution("FAILED", OOM),
        LiveExecution("RUNNING", "Tasks are running"),
    ]
    reasons = [getattr(o, "reason", "") for o in outcomes[2:]]
    assert [r.split(":")[0] for r in reasons] == ["HTTP 403", "HTTP 404", "HTTP 500"]
    assert cloud_run_warnings == []  # the reaper names what failed itself


def test_in_order_counts_a_hung_execution_as_a_timeout_and_goes_past_it(
    standin: CloudRunStandIn,
) -> None:
    lookup = in_order_for(standin, deadline=0.5, workers=2)
    hung = scripted(standin, "hang", standin_replies.hang)
    rest = [scripted(standin, f"ok{i}", standin_replies.succeeded) for i in range(3)]
    outcomes = lookup([hung, *rest])
    assert outcomes[0] == LookupFailure("no answer within 0.5 s")
    assert [o.job_state for o in outcomes[1:] if isinstance(o, LiveExecution)] == ["SUCCEEDED"] * 3


def test_in_order_leaves_what_it_could_not_start_for_later_and_does_not_queue_it(
    standin: CloudRunStandIn,
) -> None:
    # One worker, every execution hung: the first starts (it always does), and by the
    # time it gives up the deadline for starting more has passed.
    lookup = in_order_for(standin, deadline=0.3, workers=1)
    names = [scripted(standin, f"hang{i}", standin_replies.hang) for i in range(4)]
    outcomes = lookup(names)
    assert outcomes == [LookupFailure("no answer within 0.3 s")]
    time.sleep(1.0)  # anything left queued in the background would have been sent by now
    assert [standin.requests(n) for n in names] == [1, 0, 0, 0]


def test_in_order_answers_known_states_without_a_call(standin: CloudRunStandIn) -> None:
    clock = FakeClock()
    lookup = in_order_for(standin, timer=clock)
    done = scripted(standin, "failed", standin_replies.failed)
    denied = standin.script(new_execution("e403"), standin_replies.http_error(403))
    first = lookup([done, denied])
    assert lookup([done, denied]) == first
    assert (standin.requests(done), standin.requests(denied)) == (1, 1)
    clock.now += 6  # a failure is asked again after the TTL; a terminal state never
    lookup([done, denied])
    assert (standin.requests(done), standin.requests(denied)) == (1, 2)


# -- through the function, in process ----------------------------------------


@pytest.fixture
def live_client(client, standin: CloudRunStandIn, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CLOUD_RUN_LOOKUP", "true")
    monkeypatch.setenv("CLOUD_RUN_EMULATOR_HOST", standin.host_port)
    return client


@pytest.mark.parametrize(
    ("make", "stage_changes", "overall"),
    [
        (standin_replies.succeeded, {"jobState": "SUCCEEDED"}, "processing"),
        (standin_replies.running, {"jobState": "RUNNING"}, "processing"),
        (standin_replies.pending, {"jobState": "PENDING"}, "processing"),
        (
            standin_replies.failed,
            {
                "jobState": "FAILED",
                "status": "failed",
                "error": "Cloud Run execution failed",
                "errorDetails": OOM,
            },
            "failed",
        ),
        (
            standin_replies.cancelled,
            {
                "jobState": "CANCELLED",
                "status": "failed",
                "error": "Cloud Run execution cancelled",
                "errorDetails": "The execution was cancelled",
            },
            "failed",
        ),
    ],
    ids=["succeeded", "running", "pending", "failed", "cancelled"],
)
def test_live_state_changes_a_running_stage_by_the_table(
    live_client: Any,
    standin: CloudRunStandIn,
    seed: Seeder,
    make: Callable[[str], Reply],
    stage_changes: dict[str, Any],
    overall: str,
) -> None:
    # Stored jobState differs from every live one, so each row shows the live value winning.
    name = scripted(standin, "row", make)
    key, project, generation = seed_running_stage(seed, name, jobState="STALE")
    response = live_client.post(PATH, json=body_of(project, generation), headers={"X-Api-Key": key})
    assert response.status_code == 200
    body = response.get_json()
    assert body["inference"] == {**STORED_RUNNING_STAGE, **stage_changes}
    assert body["status"] == overall
    if overall == "failed":
        assert (body["error"], body["errorDetails"]) == (
            stage_changes["error"],
            stage_changes["errorDetails"],
        )
    else:
        assert "error" not in body and "errorDetails" not in body
    assert standin.requests(name) == 1


def test_stored_error_and_details_win_over_the_summary(
    live_client: Any, standin: CloudRunStandIn, seed: Seeder
) -> None:
    name = scripted(standin, "failed", standin_replies.failed)
    key, project, generation = seed_running_stage(
        seed, name, error="Model crashed", errorDetails="CUDA error at step 12"
    )
    body = live_client.post(
        PATH, json=body_of(project, generation), headers={"X-Api-Key": key}
    ).get_json()
    assert (body["status"], body["error"], body["errorDetails"]) == (
        "failed",
        "Model crashed",
        "CUDA error at step 12",
    )
    assert body["inference"]["jobState"] == "FAILED"


def test_pending_stage_is_looked_up_too(
    live_client: Any, standin: CloudRunStandIn, seed: Seeder
) -> None:
    name = scripted(standin, "died", standin_replies.failed)
    key, project, generation = seed_running_stage(
        seed, name, status="pending", progress=0, jobState="PENDING"
    )
    body = live_client.post(
        PATH, json=body_of(project, generation), headers={"X-Api-Key": key}
    ).get_json()
    assert (body["status"], body["inference"]["status"], body["errorDetails"]) == (
        "failed",
        "failed",
        OOM,
    )


def test_switch_off_makes_no_call(
    client: Any, standin: CloudRunStandIn, seed: Seeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUD_RUN_EMULATOR_HOST", standin.host_port)
    monkeypatch.delenv("CLOUD_RUN_LOOKUP", raising=False)
    name = scripted(standin, "failed", standin_replies.failed)
    key, project, generation = seed_running_stage(seed, name)
    for _ in range(2):
        body = client.post(
            PATH, json=body_of(project, generation), headers={"X-Api-Key": key}
        ).get_json()
        assert body["inference"] == STORED_RUNNING_STAGE and body["status"] == "processing"
    assert standin.total_requests() == 0


# -- through the served function, over HTTP -----------------------------------


def test_served_dead_worker_is_reported_failed_with_the_execution_message(
    serve_function: Callable[..., str], standin: CloudRunStandIn, seed: Seeder
) -> None:
    """The done-when: stored ``running``, execution failed -> ``failed`` with its message."""
    url = serve_function(CLOUD_RUN_LOOKUP="true", CLOUD_RUN_EMULATOR_HOST=standin.host_port)
    rows = {
        "succeeded": standin_replies.succeeded,
        "running": standin_replies.running,
        "pending": standin_replies.pending,
        "failed": standin_replies.failed,
        "cancelled": standin_replies.cancelled,
    }
    seen = {}
    for label, make in rows.items():
        key, project, generation = seed_running_stage(seed, scripted(standin, label, make))
        response = poll_served(url, key, project, generation)
        assert response.status_code == 200
        body = response.json()
        stage = body["inference"]
        seen[label] = (body["status"], stage["status"], stage["jobState"], body.get("error"),
                       body.get("errorDetails"), stage["progress"])  # fmt: skip
    assert seen == {
        "succeeded": ("processing", "running", "SUCCEEDED", None, None, 40),
        "running": ("processing", "running", "RUNNING", None, None, 40),
        "pending": ("processing", "running", "PENDING", None, None, 40),
        "failed": ("failed", "failed", "FAILED", "Cloud Run execution failed", OOM, 40),
        "cancelled": (
            "failed",
            "failed",
            "CANCELLED",
            "Cloud Run execution cancelled",
            "The execution was cancelled",
            40,
        ),
    }


def test_served_degraded_lookups_answer_200_with_the_stored_state_within_the_deadline(
    serve_function: Callable[..., str],
    standin: CloudRunStandIn,
    seed: Seeder,
    server_log_dir: Path,
) -> None:
    deadline = 1.0
    url = serve_function(
        CLOUD_RUN_LOOKUP="true",
        CLOUD_RUN_EMULATOR_HOST=standin.host_port,
        CLOUD_RUN_DEADLINE_SECONDS=str(deadline),
        PYTHONUNBUFFERED="1",
    )
    executions = {
        "500": standin.script(new_execution("e500"), standin_replies.http_error(500)),
        "403": standin.script(new_execution("e403"), standin_replies.http_error(403)),
        "404": new_execution("e404"),  # unknown to the stand-in
        "hang": scripted(standin, "hang", standin_replies.hang),  # last: the server is warm
    }
    elapsed = {}
    for case, name in executions.items():
        key, project, generation = seed_running_stage(seed, name)
        started = time.monotonic()
        response = poll_served(url, key, project, generation)
        elapsed[case] = time.monotonic() - started
        assert response.status_code == 200, case
        body = response.json()
        assert body["inference"] == STORED_RUNNING_STAGE, case
        assert body["status"] == "processing" and "error" not in body, case
        assert standin.requests(name) == 1, case
    assert elapsed["hang"] < deadline + MARGIN, elapsed
    # One warning per failed lookup, naming the execution; the hung one lands at its deadline.
    log_file = server_log_dir / f"{url.rsplit(':', 1)[1]}.log"
    give_up = time.monotonic() + 10
    while not warning_lines(log_file, executions["hang"]) and time.monotonic() < give_up:
        time.sleep(0.1)
    assert {
        case: len(warning_lines(log_file, n)) for case, n in executions.items()
    } == dict.fromkeys(executions, 1)


def test_served_polls_share_cached_states_and_skip_finished_stages(
    serve_function: Callable[..., str], standin: CloudRunStandIn, seed: Seeder
) -> None:
    url = serve_function(
        CLOUD_RUN_LOOKUP="true",
        CLOUD_RUN_EMULATOR_HOST=standin.host_port,
        CLOUD_RUN_CACHE_TTL_SECONDS="120",  # the whole burst falls inside one window
    )
    terminal = scripted(standin, "failed", standin_replies.failed)
    running = scripted(standin, "running", standin_replies.running)
    done_stage = scripted(standin, "for-complete", standin_replies.failed)
    failed_stage = scripted(standin, "for-failed", standin_replies.succeeded)
    polls = [
        seed_running_stage(seed, terminal),
        seed_running_stage(seed, running),
        seed_running_stage(seed, done_stage, status="complete", progress=100),
        seed_running_stage(seed, failed_stage, status="failed", error="worker said no"),
    ]
    answers: list[list[tuple[str, str | None]]] = []
    for _ in range(4):
        answers.append([])
        for key, project, generation in polls:
            response = poll_served(url, key, project, generation)
            assert response.status_code == 200
            stage = response.json()["inference"]
            answers[-1].append((stage["status"], stage["jobState"]))
    # The finished stages keep their stored jobState: their executions were never asked.
    each_poll = [("failed", "FAILED"), ("running", "RUNNING")]
    each_poll += [("complete", "RUNNING"), ("failed", "RUNNING")]
    assert answers == [each_poll] * 4
    assert {
        "terminal": standin.requests(terminal),
        "running": standin.requests(running),
        "complete": standin.requests(done_stage),
        "failed": standin.requests(failed_stage),
    } == {"terminal": 1, "running": 1, "complete": 0, "failed": 0}
