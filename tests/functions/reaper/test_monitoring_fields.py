"""monitoring/'s reaper metrics read fields that the served reaper really logs."""

from __future__ import annotations

from pathlib import Path

import httpx

from diffio_progress.tools import cloud_run_standin as replies
from diffio_progress.tools.cloud_run_standin import CloudRunStandIn
from tests.functions.reaper.stages import Stages
from tests.monitoring.resources import matched_by_metrics
from tests.monitoring.served import served

TARGET = "reap_stalled_jobs"


def test_each_reaper_metric_matches_the_lines_it_is_for_and_finds_its_fields(
    stages: Stages, standin: CloudRunStandIn, server_log_dir: Path, firestore_host: str
) -> None:
    dead = stages.add(replies.failed)
    unknown = stages.add(None)  # Cloud Run answers 404: a lookup error
    stages.add(replies.running)
    env = {"CLOUD_RUN_EMULATOR_HOST": standin.host_port}
    with served(TARGET, firestore_host, server_log_dir, **env) as function:
        assert httpx.get(function.url, timeout=30).status_code == 405  # not a pass
        answer = httpx.post(function.url, timeout=60)
        made = function.entries()

    assert answer.json() == {"checked": 3, "failed": 1, "lookupErrors": 1}
    matched = matched_by_metrics(TARGET, made)

    assert set(matched) == {"reaper_runs", "reaper_stages_failed", "reaper_lookup_errors"}
    [run] = matched["reaper_runs"]
    assert run["httpRequest"]["status"] == 200  # the 405 is not counted as a pass
    [failed] = matched["reaper_stages_failed"]
    assert failed["jsonPayload"]["jobPath"] == "/".join(dead)
    [error] = matched["reaper_lookup_errors"]
    assert error["jsonPayload"]["jobPath"] == "/".join(unknown)
