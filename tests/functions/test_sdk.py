"""The official SDK (pip install diffio), unchanged, against the function served over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import diffio
import httpx
import pytest
from diffio import DiffioClient

from diffio_progress.worker.generation_writer import GenerationWriter
from diffio_progress.worker.stage_writer import StageWriter
from tests.seed import Seeder, new_key


@pytest.fixture(scope="module")
def base_url(serve_function_for_module: Callable[..., str]) -> str:
    """The function served by functions-framework on the test project, one for the module.

    Each test's ``seed`` empties the project first; the ids are the same in every
    test, so what the server remembers between tests stays true.
    """
    return serve_function_for_module()


@pytest.fixture
def sdk(seed: Seeder, base_url: str) -> Iterator[DiffioClient]:
    key = seed.world("proj-1", "gen-1", has_video=True)
    with DiffioClient(apiKey=key, baseUrl=f"{base_url}/v1") as client:
        yield client


def test_get_generation_progress_parses_every_field_and_errors_are_diffio_api_errors(
    seed: Seeder, sdk: DiffioClient, base_url: str
) -> None:
    seed.job(
        "proj-1",
        "gen-1",
        "preProcessing",
        jobId="job-pre",
        jobState="SUCCEEDED",
        status="complete",
        progress=100,
    )
    seed.job(
        "proj-1",
        "gen-1",
        "inference",
        jobId="job-gpu",
        jobState="RUNNING",
        status="running",
        progress=45,
        statusMessage="Processing audio",
    )
    for project_id in (None, "proj-1"):
        progress = sdk.get_generation_progress(generationId="gen-1", apiProjectId=project_id)
        assert (progress.generationId, progress.apiProjectId) == ("gen-1", "proj-1")
        assert (progress.status, progress.hasVideo) == ("processing", True)
        assert (progress.error, progress.errorDetails) == (None, None)
        pre, inference, video = progress.preProcessing, progress.inference, progress.restoredVideo
        assert (pre.jobId, pre.jobState, pre.status, pre.progress) == (
            "job-pre",
            "SUCCEEDED",
            "complete",
            100,
        )
        assert (inference.jobId, inference.status, inference.progress) == ("job-gpu", "running", 45)
        assert inference.statusMessage == "Processing audio"
        assert (video.jobId, video.jobState, video.status, video.progress) == (
            None,
            None,
            "pending",
            0,
        )

    # The SDK parses a 2xx only when its Content-Type is application/json (else
    # it returns {}); the error message is read from the JSON "error" string.
    url = f"{base_url}/v1/get_generation_progress"
    for response in (
        httpx.post(url, json={"generationId": "gen-1"}, headers={"X-Api-Key": sdk.apiKey}),
        httpx.post(url, content=b"{", headers={"X-Api-Key": sdk.apiKey}),
        httpx.get(url),
    ):
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert isinstance(response.json(), dict)

    seed.world("proj-2", "gen-2", "user-2")
    good = sdk.apiKey
    not_owner = "API key does not own the project or generation"
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        (new_key(), {"generationId": "gen-1"}, 401, "Invalid API key"),
        (
            seed.api_key("user-1", status="revoked"),
            {"generationId": "gen-1"},
            403,
            "API key is not active",
        ),
        (
            seed.api_key("user-1", permissions={"read": False}),
            {"generationId": "gen-1"},
            403,
            "API key is missing read permission",
        ),
        (good, {"generationId": "gen-2"}, 403, not_owner),
        (good, {"generationId": "gen-2", "apiProjectId": "proj-2"}, 403, not_owner),
        (good, {"generationId": "nope"}, 404, "Generation not found"),
        (good, {"generationId": "gen-1", "apiProjectId": "proj-2"}, 404, "Generation not found"),
        (good, {"generationId": ""}, 400, "generationId must be provided as a string"),
        (good, {"generationId": 123}, 400, "generationId must be provided as a string"),
        (
            good,
            {"generationId": "gen-1", "apiProjectId": 5},
            400,
            "apiProjectId must be a string when provided",
        ),
    ]
    for key, arguments, status, message in cases:
        with DiffioClient(apiKey=key, baseUrl=f"{base_url}/v1") as client:
            with pytest.raises(diffio.DiffioApiError) as caught:
                client.get_generation_progress(**arguments)
        assert (caught.value.statusCode, caught.value.message) == (status, message), arguments
        assert caught.value.responseBody["error"] == message


def progress_line(progress: Any) -> str:
    """The SDK's own showProgress line, rebuilt from a parsed response."""
    stages = [("pre", progress.preProcessing), ("inf", progress.inference)]
    if progress.restoredVideo is not None:
        stages.append(("vid", progress.restoredVideo))
    parts = ", ".join(f"{name}={stage.status}:{stage.progress}%" for name, stage in stages)
    return f"{progress.status} ({parts})"


def test_wait_for_generation_follows_the_stages_to_complete(
    seed: Seeder, sdk: DiffioClient, capsys: pytest.CaptureFixture[str]
) -> None:
    # (job documents to write, the line the SDK prints for the result)
    states: list[tuple[dict[str, dict[str, Any]], str]] = [
        ({}, "pending (pre=pending:0%, inf=pending:0%, vid=pending:0%)"),
        (
            {"preProcessing": {"status": "running", "progress": 30}},
            "processing (pre=running:30%, inf=pending:0%, vid=pending:0%)",
        ),
        (
            {
                "preProcessing": {"status": "complete"},
                "inference": {
                    "status": "running",
                    "progress": 45,
                    "statusMessage": "Processing audio",
                },
            },
            "processing (pre=complete:100%, inf=running:45%, vid=pending:0%)",
        ),
        (
            {
                "inference": {"status": "complete", "progress": 100, "statusMessage": "Done"},
                "restoredVideo": {"status": "running", "progress": 80},
            },
            "processing (pre=complete:100%, inf=complete:100%, vid=running:80%)",
        ),
        (
            {"restoredVideo": {"status": "complete", "progress": 100}},
            "complete (pre=complete:100%, inf=complete:100%, vid=complete:100%)",
        ),
    ]
    seen: list[str] = []
    observed = threading.Condition()

    def on_progress(progress: Any) -> None:
        with observed:
            seen.append(progress_line(progress))
            observed.notify_all()

    def advance() -> None:
        # Each state is written only once the SDK has seen the one before, so
        # every state is observed whatever the machine's speed.
        for (_, before), (jobs, _) in zip(states, states[1:], strict=False):
            with observed:
                if not observed.wait_for(lambda b=before: b in seen, timeout=20):
                    return
            batch = seed.db.batch()
            for stage, fields in jobs.items():
                path = ("apiProjects", "proj-1", "generations", "gen-1", "jobs", stage)
                batch.set(seed.db.document(*path), {"updatedAt": datetime.now(UTC), **fields})
            batch.commit()  # all stages of a state at once: no half-written state is polled

    writer = threading.Thread(target=advance, daemon=True)
    writer.start()
    result = sdk.wait_for_generation(
        generationId="gen-1",
        showProgress=True,
        onProgress=on_progress,
        pollInterval=0.2,
        timeout=30,
    )
    writer.join(timeout=5)
    assert result.status == "complete"
    assert (result.generationId, result.apiProjectId, result.hasVideo) == ("gen-1", "proj-1", True)
    assert [result.preProcessing.progress, result.inference.progress] == [100, 100]
    assert result.inference.statusMessage == "Done"
    assert result.restoredVideo.status == "complete"
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    distinct = [line for i, line in enumerate(lines) if i == 0 or line != lines[i - 1]]
    assert distinct == [line for _, line in states]

    # A failed generation ends the wait with a RuntimeError naming the error.
    seed.generation("proj-1", "gen-2", "user-1")
    seed.job("proj-1", "gen-2", "preProcessing", status="complete")
    seed.job(
        "proj-1",
        "gen-2",
        "inference",
        status="failed",
        error="GPU out of memory",
        errorDetails="CUDA error: out of memory",
    )
    for project_id in ("proj-1", None):
        with pytest.raises(RuntimeError) as caught:
            sdk.wait_for_generation(
                generationId="gen-2", apiProjectId=project_id, pollInterval=0.2, timeout=30
            )
        message = str(caught.value)
        assert "inference=failed" in message
        assert "error=GPU out of memory" in message
        assert "details=CUDA error: out of memory" in message


QUEUE = {"position": 3, "message": "Waiting for a GPU"}


@pytest.mark.parametrize(
    ("generation", "jobs", "expected"),
    [
        (
            {"transcription": {"status": "pending"}, "queue": QUEUE},
            {},
            ("pending", "preProcessing", (1, 3, 0), QUEUE),
        ),
        (
            {"transcription": {"status": "available"}, "queue": {"position": 0, "message": None}},
            {"preProcessing": {"status": "complete"}},
            ("available", "inference", (2, 3, 0), {"position": 0, "message": None}),
        ),
        (
            # The dispatcher's queue is stale once inference runs: None, as for any older API.
            {"transcription": {"status": "available"}, "queue": QUEUE},
            {
                "preProcessing": {"status": "complete"},
                "inference": {"status": "running", "progress": 45},
            },
            ("available", "inference", (2, 3, 45), None),
        ),
        (
            {"transcription": {"status": "unavailable"}},
            {
                "preProcessing": {"status": "complete"},
                "inference": {"status": "failed", "progress": 62, "error": "GPU lost"},
            },
            ("unavailable", "inference", (2, 3, 62), None),
        ),
    ],
)
def test_the_sdk_reads_transcription_stage_and_queue_as_seeded(
    seed: Seeder,
    sdk: DiffioClient,
    generation: dict[str, Any],
    jobs: dict[str, dict[str, Any]],
    expected: tuple[str, str, tuple[int, int, int], dict[str, Any] | None],
) -> None:
    seed.generation("proj-1", "gen-1", "user-1", **generation)
    for stage, fields in jobs.items():
        seed.job("proj-1", "gen-1", stage, **fields)
    transcription, stage, (index, count, percent), queue = expected

    for project_id in (None, "proj-1"):
        progress = sdk.get_generation_progress(generationId="gen-1", apiProjectId=project_id)
        assert isinstance(progress.transcription, diffio.GenerationTranscription)
        assert progress.transcription.status == transcription
        assert progress.stage == stage
        assert progress.stageProgress == {
            "stage": stage,
            "index": index,
            "count": count,
            "progress": percent,
        }
        assert progress.queue == queue


def test_an_older_generation_reads_none_for_transcription_and_queue(
    seed: Seeder, sdk: DiffioClient
) -> None:
    seed.job("proj-1", "gen-1", "preProcessing", status="running", progress=30)
    progress = sdk.get_generation_progress(generationId="gen-1")
    assert (progress.transcription, progress.queue) == (None, None)
    # The stage comes from the job documents, which every generation has.
    assert progress.stage == "preProcessing"
    assert progress.stageProgress == {
        "stage": "preProcessing",
        "index": 1,
        "count": 3,
        "progress": 30,
    }


def test_wait_for_generation_completes_through_the_queue_and_the_transcript(
    seed: Seeder, sdk: DiffioClient
) -> None:
    generation = GenerationWriter(seed.db, "proj-1", "gen-1")
    stages = {
        name: StageWriter(seed.db, "proj-1", "gen-1", name)
        for name in ("preProcessing", "inference", "restoredVideo")
    }
    # Each write is made once the SDK has seen the state before it, so every state is observed.
    writes: list[Callable[[], object]] = [
        lambda: generation.queue(0, "Next in line"),
        generation.dequeue,
        lambda: stages["preProcessing"].progress(50),
        stages["preProcessing"].complete,
        lambda: generation.transcription("available"),
        lambda: stages["inference"].progress(45),
        stages["inference"].complete,
        stages["restoredVideo"].complete,
    ]
    generation.transcription("pending")
    generation.queue(2, "Waiting for a GPU")
    seen: list[tuple[Any, ...]] = []
    observed = threading.Condition()

    def on_progress(progress: Any) -> None:
        state = (
            progress.status,
            progress.queue and progress.queue["position"],
            progress.transcription and progress.transcription.status,
            progress.stage,
            progress.stageProgress and progress.stageProgress["progress"],
        )
        with observed:
            if not seen or seen[-1] != state:
                seen.append(state)
            observed.notify_all()

    def advance() -> None:
        for count, write in enumerate(writes, start=1):
            with observed:
                if not observed.wait_for(lambda c=count: len(seen) >= c, timeout=20):
                    return
            write()

    writer = threading.Thread(target=advance, daemon=True)
    writer.start()
    result = sdk.wait_for_generation(
        generationId="gen-1", onProgress=on_progress, pollInterval=0.1, timeout=60
    )
    writer.join(timeout=5)

    assert result.status == "complete"
    assert result.transcription.status == "available"
    assert (result.stage, result.stageProgress, result.queue) == (None, None, None)
    assert seen == [
        ("pending", 2, "pending", "preProcessing", 0),
        ("pending", 0, "pending", "preProcessing", 0),
        ("pending", None, "pending", "preProcessing", 0),
        ("processing", None, "pending", "preProcessing", 50),
        ("processing", None, "pending", "inference", 0),
        ("processing", None, "available", "inference", 0),
        ("processing", None, "available", "inference", 45),
        ("processing", None, "available", "restoredVideo", 0),
        ("complete", None, "available", None, None),
    ]
