"""Cold start: the progress function imports nothing its first poll does not need."""

from __future__ import annotations

import pytest

from tests.module_probe import loaded, modules_loaded_by

# Loaded only by other entry points, by options that are off, or by tools.
NOT_FOR_A_POLL = (
    "google.cloud.run_v2",
    "diffio_progress.functions.cloud_run",
    # the event function's and the reaper's, and what a worker writes with
    "diffio_progress.functions.events",
    "diffio_progress.functions.reaper",
    "diffio_progress.functions.webhooks",
    "diffio_progress.worker",
    "svix",
    "httpcore",
    "google.events",
    "httpx",
    "rich",
    "diffio",
    "diffio_progress.tools",
    "diffio_progress.bench",
)


def modules_after_start(env: dict[str, str]) -> set[str]:
    """Module names loaded once functions-framework has loaded main.py and built the handler."""
    return modules_loaded_by(
        "import functions_framework\n"
        "functions_framework.create_app(target='get_generation_progress', source='main.py')\n"
        "from diffio_progress.functions.progress.wiring import default_handler\n"
        "default_handler()\n",
        {"GOOGLE_CLOUD_PROJECT": "p", **env},
    )


@pytest.fixture(scope="module")
def started() -> set[str]:
    return modules_after_start({})


def test_the_probe_sees_what_a_poll_does_load(started: set[str]) -> None:
    assert loaded(started, "google.cloud.firestore") and loaded(started, "flask")


@pytest.mark.parametrize("name", NOT_FOR_A_POLL)
def test_a_poll_needs_none_of_the_other_functions_or_the_tools(
    name: str, started: set[str]
) -> None:
    assert not loaded(started, name)


def test_the_cloud_run_client_loads_only_when_the_lookup_is_on() -> None:
    modules = modules_after_start({"CLOUD_RUN_LOOKUP": "true"})
    assert loaded(modules, "google.cloud.run_v2")
