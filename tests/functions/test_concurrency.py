"""Many clients at once against the served function (gunicorn threads): every answer exact."""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from google.cloud import firestore

from tests.seed import Seeder
from tests.spec_example import current_stage

REQUESTS = 200
CLIENTS = 16
USERS = ("user-1", "user-2", "user-3")


@dataclass(frozen=True)
class Gen:
    project_id: str
    generation_id: str
    owner: str
    video: bool
    inference_progress: int


def _stage(status: str, progress: int, job_id: str | None = None) -> dict[str, Any]:
    return {
        "jobId": job_id,
        "jobState": None,
        "status": status,
        "progress": progress,
        "statusMessage": None,
        "error": None,
        "errorDetails": None,
    }


def _expected_body(gen: Gen) -> dict[str, Any]:
    """Written out by hand from what was seeded, not computed by the code under test."""
    body: dict[str, Any] = {
        "generationId": gen.generation_id,
        "apiProjectId": gen.project_id,
        "status": "processing",
        "hasVideo": gen.video,
        "preProcessing": _stage("complete", 100, f"pre-{gen.generation_id}"),
        "inference": _stage("running", gen.inference_progress, f"inf-{gen.generation_id}"),
        **current_stage("inference", 2, 3 if gen.video else 2, gen.inference_progress),
    }
    if gen.video:
        body["restoredVideo"] = _stage("pending", 0)
    return body


def _seed_world(seed: Seeder) -> tuple[dict[str, str], list[Gen]]:
    keys = {user: seed.api_key(user) for user in USERS}
    gens = []
    n = 0
    for user in USERS:
        for p in range(4):
            video = p % 2 == 1
            project_id = f"proj-{user}-{p}"
            seed.project(project_id, user, has_video=video)
            # Two generations in some projects: the project's media type is shared.
            for g in range(1 + p % 2):
                n += 1
                gen = Gen(project_id, f"gen-{user}-{p}-{g}", user, video, n)
                seed.generation(project_id, gen.generation_id, user)
                seed.job(
                    project_id,
                    gen.generation_id,
                    "preProcessing",
                    status="complete",
                    jobId=f"pre-{gen.generation_id}",
                )
                seed.job(
                    project_id,
                    gen.generation_id,
                    "inference",
                    status="running",
                    progress=n,
                    jobId=f"inf-{gen.generation_id}",
                )
                if not video:
                    # Present but not this project's stage: never reported.
                    seed.job(project_id, gen.generation_id, "restoredVideo", status="running")
                gens.append(gen)
    return keys, gens


Expectation = tuple[int, dict[str, Any]]


def _requests(
    keys: dict[str, str], gens: list[Gen]
) -> list[tuple[str, dict[str, str], Expectation]]:
    rng = random.Random(5)
    forbidden = {"error": "API key does not own the project or generation", "code": "forbidden"}
    not_found = {"error": "Generation not found", "code": "generation_not_found"}
    made = []
    for i in range(REQUESTS):
        caller = rng.choice(USERS)
        gen = rng.choice(gens)
        body = {"generationId": gen.generation_id}
        kind = i % 5
        if kind in (1, 2):
            body["apiProjectId"] = gen.project_id
        if kind == 3:
            body["apiProjectId"] = f"proj-{gen.owner}-{(int(gen.project_id[-1]) + 1) % 4}"
        if kind == 4:
            body["generationId"] = f"gen-unknown-{i % 7}"
        expected: Expectation
        if kind == 4 or (kind == 3 and body["apiProjectId"] != gen.project_id):
            expected = (404, not_found)
        elif caller != gen.owner:
            expected = (403, forbidden)
        else:
            expected = (200, _expected_body(gen))
        made.append((keys[caller], body, expected))
    return made


def test_concurrent_polls_each_get_exactly_their_own_answer(
    seed: Seeder, db: firestore.Client, serve_function: Callable[..., str]
) -> None:
    keys, gens = _seed_world(seed)
    requests = _requests(keys, gens)
    # Every kind of answer is in the mix, for every user.
    assert {status for _, _, (status, _) in requests} == {200, 403, 404}
    # 200 polls at once from four keys: far over the per-key limit, which is not under test.
    url = serve_function(KEY_RATE_LIMIT_PER_SECOND="0") + "/v1/get_generation_progress"

    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=CLIENTS)) as client:

        def send(request: tuple[str, dict[str, str], Expectation]) -> tuple[int, Any]:
            key, body, _ = request
            response = client.post(url, json=body, headers={"Authorization": f"Bearer {key}"})
            return response.status_code, response.json()

        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(send, requests))

    wrong = [
        (body, expected, answer)
        for (_, body, expected), answer in zip(requests, answers, strict=True)
        if answer != expected
    ]
    assert wrong == []
