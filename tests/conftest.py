"""Shared fixtures: the real Firestore emulator, contract seeding, the function's clients."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from google.cloud import firestore

from diffio_progress.functions.logs import LOGGER_NAME
from diffio_progress.functions.progress.wiring import reset_default_handler
from diffio_progress.tools import emulator
from diffio_progress.tools.processes import (
    NotServing,
    start_function,
    stop_group,
    wait_until_serving,
)
from tests import secrecy
from tests.log_records import LogCapture
from tests.project import LOCAL_KEY, ROOT, TEST_PROJECT, WEBHOOK_DATABASE
from tests.seed import MINTED_KEYS, MINTED_SECRETS, Seeder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` run first, one at the head of each worker's first batch.

    Each is half a minute of real deadlines and restarts. Started late, one of them
    alone holds the run open after every other test has finished; started first,
    they run beside the many short tests that xdist hands out as workers free up.
    xdist's load scheduler gives each worker a first batch of consecutive tests (a
    quarter of its share), so the slow tests stand one batch apart: side by side,
    they would all be one worker's. The order is otherwise kept.
    """
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    rest = [item for item in items if item.get_closest_marker("slow") is None]
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    batch = max(len(items) // workers // 4, 2)
    ordered: list[pytest.Item] = []
    for index, item in enumerate(slow):
        if index < workers:  # one at the head of each first batch
            ordered += [item, *rest[: batch - 1]]
            rest = rest[batch - 1 :]
        else:  # the rest first in what is handed out next
            ordered.append(item)
    items[:] = ordered + rest


@pytest.fixture(scope="session")
def server_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where every served function writes its stdout and stderr."""
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session", autouse=True)
def no_api_key_in_logs(server_log_dir: Path) -> Iterator[LogCapture]:
    """Capture every log of the run; at the end, fail if any minted key or secret appears in one.

    Secrets are API keys, webhook signing secrets and Svix tokens.
    """
    capture = LogCapture()
    loggers = [logging.getLogger(LOGGER_NAME), logging.getLogger()]
    for logger in loggers:
        logger.addHandler(capture)
    yield capture
    for logger in loggers:
        logger.removeHandler(capture)
    logs = [*capture.lines, *secrecy.read_logs(server_log_dir)]
    leaks = secrecy.find_leaks(MINTED_KEYS | MINTED_SECRETS, logs)
    assert not leaks, f"API keys or secrets appeared in the logs: {leaks}"


@pytest.fixture(scope="session")
def firestore_host() -> Iterator[str]:
    """``host:port`` of a Firestore emulator: the one in FIRESTORE_EMULATOR_HOST, or our own.

    Never skips: with no emulator installed the session fails with install help.
    """
    given = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if given:
        if not emulator.is_ready(given, timeout=5):
            pytest.fail(f"FIRESTORE_EMULATOR_HOST={given} does not answer.", pytrace=False)
        yield given
        return
    try:
        process = emulator.FirestoreEmulator().start()
    except emulator.EmulatorNotFound as missing:
        pytest.fail(str(missing), pytrace=False)
    os.environ["FIRESTORE_EMULATOR_HOST"] = process.host_port
    try:
        yield process.host_port
    finally:
        process.stop()
        os.environ.pop("FIRESTORE_EMULATOR_HOST", None)


@pytest.fixture
def db(firestore_host: str, monkeypatch: pytest.MonkeyPatch) -> firestore.Client:
    """A Firestore client on an emptied emulator project; the function reads the same one."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_host)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", TEST_PROJECT)
    monkeypatch.setenv("WEBHOOK_SECRETS_LOCAL_KEY", LOCAL_KEY)
    emulator.clear(firestore_host, TEST_PROJECT)
    emulator.clear(firestore_host, TEST_PROJECT, WEBHOOK_DATABASE)
    return firestore.Client(project=TEST_PROJECT)


@pytest.fixture
def webhooks_db(db: firestore.Client) -> firestore.Client:
    """A client of the ``webhooks`` database (endpoints, secrets), emptied with ``db``."""
    return firestore.Client(project=TEST_PROJECT, database=WEBHOOK_DATABASE)


@pytest.fixture
def seed(db: firestore.Client) -> Seeder:
    return Seeder(db)


@pytest.fixture(scope="session")
def app():  # type: ignore[no-untyped-def]
    """The real entry point: main.py loaded by functions-framework."""
    import functions_framework

    return functions_framework.create_app(
        target="get_generation_progress", source=str(ROOT / "main.py")
    )


@pytest.fixture
def client(app, db: firestore.Client):  # type: ignore[no-untyped-def]
    """A test client of the function with a fresh handler (fresh caches, current env)."""
    reset_default_handler()
    yield app.test_client()
    reset_default_handler()


@pytest.fixture
def serve_function(firestore_host: str, server_log_dir: Path) -> Iterator[Callable[..., str]]:
    """Start ``functions-framework`` serving main.py over HTTP; returns its base URL.

    Extra environment variables may be passed, and ``target`` names another entry
    point of main.py (``None``: every path of the routing table, firebase.json, behind one
    address); every server is stopped after the test.
    Its output goes to ``server_log_dir/<port>.log`` (scanned for API keys at session end).
    """
    yield from _function_servers(firestore_host, server_log_dir)


@pytest.fixture(scope="module")
def serve_function_for_module(
    firestore_host: str, server_log_dir: Path
) -> Iterator[Callable[..., str]]:
    """``serve_function`` whose servers live until the module's last test.

    For parametrized tables of requests that need no seeded data: one server start
    (about 2 s) for the whole table instead of one per row.
    """
    yield from _function_servers(firestore_host, server_log_dir)


def _function_servers(firestore_host: str, server_log_dir: Path) -> Iterator[Callable[..., str]]:
    servers: list[subprocess.Popen[bytes]] = []

    def start(target: str | None = "get_generation_progress", **env: str) -> str:
        port = emulator.free_port()
        log_file = (server_log_dir / f"{port}.log").open("ab")
        full_env = {
            **os.environ,
            "FIRESTORE_EMULATOR_HOST": firestore_host,
            "GOOGLE_CLOUD_PROJECT": TEST_PROJECT,
            "WEBHOOK_SECRETS_LOCAL_KEY": LOCAL_KEY,
            **env,
        }
        process = start_function(target, ROOT / "main.py", port, env=full_env, stdout=log_file)
        log_file.close()  # the child holds its own descriptor
        servers.append(process)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(process, url, 30)
        except NotServing as failed:
            pytest.fail(f"functions-framework {failed}")
        return url

    yield start
    for process in servers:
        stop_group(process)
