"""What a process remembers across polls is nobody else's: ids per user, small refusals."""

from __future__ import annotations

import gc
import json
from typing import Any

from google.cloud import firestore

from diffio_progress.core.errors import ApiError
from diffio_progress.functions.config import Settings
from tests.clocks import Clock
from tests.counted_handler import QUERY, counted_handler
from tests.project import TEST_PROJECT
from tests.seed import Seeder, new_key

PATH = "/v1/get_generation_progress"


def poll(client: Any, key: str, generation_id: str) -> Any:
    """A poll without apiProjectId through main.py's entry point."""
    body = json.dumps({"generationId": generation_id})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return client.post(PATH, data=body, headers=headers)


def test_another_tenants_polls_never_make_my_generation_403(client: Any, seed: Seeder) -> None:
    """User 2 asks for an id that only user 1 has yet (403), user 1 polls it; then user 2
    creates a generation with that id: user 2's own polls find it, this time and later."""
    first = seed.world("proj-1", "gen-dup", "user-1")
    second = seed.api_key("user-2")
    assert poll(client, second, "gen-dup").status_code == 403
    assert poll(client, first, "gen-dup").status_code == 200
    seed.project("proj-2", "user-2")
    seed.generation("proj-2", "gen-dup", "user-2")
    for _ in range(3):
        response = poll(client, second, "gen-dup")
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["apiProjectId"] == "proj-2"
        assert poll(client, first, "gen-dup").get_json()["apiProjectId"] == "proj-1"


def test_a_user_whose_generation_went_elsewhere_is_told_403_without_a_search_each_time(
    seed: Seeder, db: firestore.Client, clock: Clock
) -> None:
    """The per-user memory still spares a proven-unique id the query on every poll."""
    key = seed.world("proj-1", "gen-1", "user-1")
    counted = counted_handler(Settings(project=TEST_PROJECT), monotonic=clock)
    assert counted.poll(key, "gen-1").status == 200
    seed.project("proj-1", "user-2")  # the project changed hands
    first = counted.poll(key, "gen-1")
    assert first.status == 403
    later = counted.poll(key, "gen-1")
    assert later.status == 403 and QUERY not in later.counts


def test_remembered_refusals_keep_no_exception_alive(
    seed: Seeder, db: firestore.Client, clock: Clock
) -> None:
    """An exception holds its traceback and every frame's locals: a flood of refused keys
    must not keep those for the memory's lifetime (the refusal itself is remembered)."""
    settings = Settings(project=TEST_PROJECT, refused_keys_per_address_per_minute=0)
    counted = counted_handler(settings, monotonic=clock)
    keys = [new_key() for _ in range(30)]
    assert {counted.poll(key, "gen-1", "proj-1").status for key in keys} == {401}
    remembered = counted.poll(keys[0], "gen-1", "proj-1")
    assert remembered.status == 401 and remembered.counts == {}
    assert remembered.body == {"error": "Invalid API key", "code": "api_key_invalid"}
    gc.collect()
    alive = [o for o in gc.get_objects() if isinstance(o, ApiError)]
    assert len(alive) < len(keys) // 2, f"{len(alive)} exceptions kept for {len(keys)} refusals"
