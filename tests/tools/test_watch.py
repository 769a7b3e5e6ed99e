"""`watch` over HTTP against the real function while the simulator advances a generation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from queue import Queue
from typing import Any

import pytest

from diffio_progress.tools.cli import main
from diffio_progress.tools.emulator import free_port
from diffio_progress.tools.simulator import Failure, Pace, simulate
from diffio_progress.worker.generation_writer import GenerationWriter
from diffio_progress.worker.stage_writer import StageWriter
from tests.project import ROOT
from tests.seed import Seeder

FAST = Pace(step_seconds=0.1, steps=5, queued_seconds=0.2)
COMPLETE_BODY = {"generationId": "g", "apiProjectId": "p", "status": "complete"}


@pytest.fixture
def url(serve_function: Callable[..., str]) -> str:
    return serve_function() + "/v1/get_generation_progress"


def start_simulator(seed: Seeder, project: str, generation: str, **kwargs: Any) -> threading.Thread:
    thread = threading.Thread(
        target=simulate, args=(seed.db, project, generation), kwargs={"pace": FAST, **kwargs}
    )
    thread.start()
    return thread


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_watch_follows_a_video_generation_to_complete(seed: Seeder, url: str) -> None:
    key = seed.world("proj-v", "gen-v", has_video=True)

    # The real command line, as a user or script runs it.
    watch = subprocess.Popen(
        [sys.executable, "-m", "diffio_progress", "watch", "gen-v", "--url", url, "--json"]
        + ["--interval", "0.05", "--project-id", "proj-v"],
        cwd=ROOT,
        env={**os.environ, "DIFFIO_API_KEY": key},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert watch.stdout is not None
    # The workers start once watch has seen the generation pending: on a slow
    # machine the fast simulation could otherwise end before watch's first poll.
    first = watch.stdout.readline()
    assert json.loads(first)["status"] == "pending"
    simulator = start_simulator(seed, "proj-v", "gen-v", has_video=True)
    rest, errors = watch.communicate(timeout=60)
    simulator.join(30)
    result = subprocess.CompletedProcess(watch.args, watch.returncode, first + rest, errors)

    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stdout)
    final = lines[-1]
    assert final["status"] == "complete"
    assert final["hasVideo"] is True
    for stage in ("preProcessing", "inference", "restoredVideo"):
        assert (final[stage]["status"], final[stage]["progress"]) == ("complete", 100)
    # One line per change: the generation was seen moving, and no line repeats the last.
    assert len(lines) >= 3
    assert all(a != b for a, b in zip(lines, lines[1:], strict=False))
    assert any(line["status"] == "processing" for line in lines)


def test_watch_exits_non_zero_with_the_error_when_a_stage_fails(
    seed: Seeder, url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = seed.world("proj-a", "gen-a")
    failure = Failure("inference", "Inference failed", "CUDA out of memory")
    simulator = start_simulator(seed, "proj-a", "gen-a", has_video=False, failure=failure)
    monkeypatch.setenv("DIFFIO_API_KEY", key)

    code = main(["watch", "gen-a", "--url", url, "--json", "--interval", "0.05"])
    simulator.join(30)

    captured = capsys.readouterr()
    assert code == 1
    final = json_lines(captured.out)[-1]
    assert (final["status"], final["error"], final["errorDetails"]) == (
        "failed",
        "Inference failed",
        "CUDA out of memory",
    )
    assert "Inference failed" in captured.err and "CUDA out of memory" in captured.err


def test_watch_draws_a_bar_per_stage(
    seed: Seeder, url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = seed.world("proj-a", "gen-a", audioOriginalMp3Ready=True)
    seed.generation("proj-a", "gen-a", transcription={"status": "available"})
    seed.job("proj-a", "gen-a", "inference", status="complete", progress=100)
    monkeypatch.setenv("DIFFIO_API_KEY", key)

    assert main(["watch", "gen-a", "--url", url]) == 0

    out = capsys.readouterr().out
    assert "gen-a" in out and "complete" in out
    assert "Preprocessing" in out and "Inference" in out and "Restored video" not in out
    assert out.count("100%") == 2
    assert "Transcription: available" in out
    assert "Stage " not in out and "Queued" not in out  # complete: no current stage, no queue


def test_watch_names_the_stage_that_failed(
    seed: Seeder, url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = seed.world("proj-v", "gen-v", has_video=True)
    seed.job("proj-v", "gen-v", "preProcessing", status="complete")
    seed.job("proj-v", "gen-v", "inference", status="failed", progress=62, error="GPU lost")
    monkeypatch.setenv("DIFFIO_API_KEY", key)

    assert main(["watch", "gen-v", "--url", url]) == 1

    captured = capsys.readouterr()
    assert "(proj-v, video): failed\nStage 2 of 3: Inference\n" in captured.out
    assert "Transcription" not in captured.out  # an older generation has none
    assert "GPU lost" in captured.err


def test_refusals_are_one_clear_line(
    seed: Seeder, url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner_key = seed.world("proj-a", "gen-a")
    cases = [
        ("401", "diffio_test_" + "x" * 43, "gen-a"),
        ("403", seed.api_key("user-2"), "gen-a"),
        ("404", owner_key, "gen-missing"),
    ]
    for status, key, generation in cases:
        monkeypatch.setenv("DIFFIO_API_KEY", key)

        code = main(["watch", generation, "--url", url, "--json"])

        captured = capsys.readouterr()
        assert code == 2, status
        assert captured.out == ""
        assert captured.err.count("\n") == 1
        assert captured.err.startswith(f"error: {status} "), captured.err
        assert key not in captured.err


class FlakyServer:
    """Answers 503 ``failures`` times, then a complete generation, on any path."""

    def __init__(self, failures: int) -> None:
        self.requests: list[tuple[str, dict[str, Any], str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, body, self.headers.get("Authorization")))
                if len(outer.requests) <= failures:
                    self._send(503, {"error": "Service temporarily unavailable", "code": "x"})
                else:
                    self._send(200, COMPLETE_BODY)

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 503:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FlakyServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky() -> Iterator[FlakyServer]:
    with FlakyServer(failures=2) as server:
        yield server


def test_watch_retries_503_and_works_on_any_path(
    flaky: FlakyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed = flaky.url + "/get_generation_progress"
    code = main(["watch", "g", "--url", deployed, "--api-key", "k-1", "--json"])

    captured = capsys.readouterr()
    assert code == 0
    assert json_lines(captured.out) == [COMPLETE_BODY]
    assert [r[0] for r in flaky.requests] == ["/get_generation_progress"] * 3
    assert flaky.requests[0][1:] == ({"generationId": "g"}, "Bearer k-1")
    assert captured.err.count("retrying") == 2


def test_an_unreachable_url_gives_up_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/get_generation_progress"
    code = main(["watch", "g", "--url", url, "--api-key", "k", "--json", "--retry-for", "1"])

    captured = capsys.readouterr()
    assert code == 3
    assert captured.out == ""
    last = captured.err.splitlines()[-1]
    assert last.startswith(f"error: Cannot reach {url}")
    assert "Traceback" not in captured.err


def test_watch_without_a_key_says_how_to_give_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIFFIO_API_KEY", raising=False)
    assert main(["watch", "g"]) == 2
    assert "DIFFIO_API_KEY" in capsys.readouterr().err


class LineReader:
    """Reads a process's stdout lines in a thread, so a test can wait for each with a timeout."""

    def __init__(self, stream: Any) -> None:
        self.lines: Queue[str] = Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line)

    def next(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.lines.get(timeout=30))
        return parsed


def test_json_lines_carry_the_queue_transcription_and_stage(seed: Seeder, url: str) -> None:
    key = seed.world("proj-q", "gen-q")
    generation = GenerationWriter(seed.db, "proj-q", "gen-q")
    pre = StageWriter(seed.db, "proj-q", "gen-q", "preProcessing")
    inference = StageWriter(seed.db, "proj-q", "gen-q", "inference")
    generation.queue(2, "Waiting for a GPU")
    generation.transcription("pending")
    command = [sys.executable, "-m", "diffio_progress", "watch", "gen-q", "--url", url, "--json"]
    command += ["--interval", "0.05", "--project-id", "proj-q"]
    env = {**os.environ, "DIFFIO_API_KEY": key}
    # One write per step, made only after watch printed the step before: every state is a line.
    steps: list[tuple[Callable[[], object], dict[str, Any]]] = [
        (lambda: None, {"queue": {"position": 2, "message": "Waiting for a GPU"}}),
        (lambda: generation.queue(0, "Next"), {"queue": {"position": 0, "message": "Next"}}),
        (generation.dequeue, {"status": "pending", "stage": "preProcessing"}),
        (lambda: pre.progress(40), {"status": "processing", "stage": "preProcessing"}),
        (pre.complete, {"stage": "inference", "transcription": {"status": "pending"}}),
        (lambda: generation.transcription("available"), {"transcription": {"status": "available"}}),
        (lambda: inference.progress(50), {"stage": "inference"}),
        (inference.complete, {"status": "complete"}),
    ]
    seen = []
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as watch:
        try:
            reader = LineReader(watch.stdout)
            for write, expected in steps:
                write()
                line = reader.next()
                assert expected.items() <= line.items(), (expected, line)
                seen.append(line)
            assert watch.wait(30) == 0
        finally:
            watch.kill()

    assert [("queue" in line) for line in seen] == [True, True] + [False] * 6
    assert seen[3]["stageProgress"] == {
        "stage": "preProcessing",
        "index": 1,
        "count": 2,
        "progress": 40,
    }
    assert seen[6]["stageProgress"] == {
        "stage": "inference",
        "index": 2,
        "count": 2,
        "progress": 50,
    }
    assert not {"stage", "stageProgress"} & set(seen[-1])
    assert seen[-1]["transcription"] == {"status": "available"}
