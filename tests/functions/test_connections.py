"""Never promise a connection that is about to be closed (connection_close.py), served.

An answer that leaves request body unread says ``Connection: close`` and closes;
an answer after a fully read body keeps the connection for the next poll.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.seed import Seeder

PATH = "/v1/get_generation_progress"
TWO_MB = b"x" * (2 * 1024 * 1024)


@pytest.fixture
def served(seed: Seeder, serve_function: Callable[..., str]) -> Iterator[tuple[str, str]]:
    key = seed.world()
    yield serve_function(), key


def poll(client: httpx.Client, url: str, key: str) -> httpx.Response:
    return client.post(url + PATH, json={"generationId": "gen-1"}, headers={"X-Api-Key": key})


# Each kind of answer that leaves body bytes on the wire, in turn on one served function.
UNREAD = [
    ("POST", TWO_MB, 413),
    ("OPTIONS", TWO_MB, 204),
    ("OPTIONS", b"a small body nobody reads", 204),
    ("GET", b"a body on a GET", 405),
    ("PUT", TWO_MB, 405),
]
# Answers given after the whole body was read.
READ = [
    (b'{"generationId": "gen-1"}', 200),
    (b"{not json", 400),
    (b'{"apiProjectId": "p"}', 400),
    (b'{"generationId": "gen-404"}', 404),
]


def test_an_answer_that_leaves_the_body_unread_closes_and_the_next_poll_works(
    served: tuple[str, str],
) -> None:
    url, key = served
    with httpx.Client(timeout=30) as client:
        for method, content, status in UNREAD:
            for _ in range(10):  # it failed 17 times in 20 before: ten rounds cannot pass by luck
                refused = client.request(method, url + PATH, content=content)
                assert refused.status_code == status, method
                assert refused.headers["Connection"] == "close", (method, status)
                assert poll(client, url, key).status_code == 200, (method, status)
        chunks = iter([b"x" * 65536] * 32)  # no Content-Length: sent chunked
        refused = client.post(url + PATH, content=chunks)
        assert refused.status_code == 413 and refused.headers["Connection"] == "close"
        assert poll(client, url, key).status_code == 200


def test_an_answer_after_a_fully_read_body_keeps_the_connection(served: tuple[str, str]) -> None:
    url, key = served
    parts = urlsplit(url)
    headers = {"X-Api-Key": key, "Content-Type": "application/json"}
    for body, status in READ:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        try:
            connection.request("POST", PATH, body=body, headers=headers)
            first = connection.getresponse()
            first.read()
            assert first.status == status
            assert first.getheader("Connection") == "keep-alive", body
            socket_before = connection.sock
            connection.request("POST", PATH, body=b'{"generationId": "gen-1"}', headers=headers)
            second = connection.getresponse()
            second.read()
            assert second.status == 200
            assert connection.sock is socket_before, body  # the same connection, not a new one
        finally:
            connection.close()
