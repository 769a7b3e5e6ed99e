"""Hostile requests, sent as raw bytes to the served function, each get a clear JSON 4xx."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from diffio_progress.tools import emulator
from tests.seed import Seeder, new_key

PATH = b"/v1/get_generation_progress"
LIMIT = 64 * 1024
# A real-looking key that is never stored: refusing it must not depend on a lookup.
UNSTORED_KEY = new_key()


@dataclass(frozen=True)
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> dict[str, str]:
        data = json.loads(self.body)
        assert isinstance(data, dict)
        return data


def send_raw(url: str, request: bytes, timeout: float = 10) -> Reply:
    """Send ``request`` byte for byte (no client normalises it) and read one response."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=timeout) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return Reply(response.status, response.headers, response.read())


def raw_post(
    body: bytes = b'{"generationId": "gen-1"}',
    headers: tuple[tuple[bytes, bytes], ...] = (),
    *,
    content_length: int | None = -1,
    method: bytes = b"POST",
) -> bytes:
    """A request as bytes; ``content_length`` -1 means the true length, None means chunked."""
    lines = [method + b" " + PATH + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [name + b": " + value for name, value in headers]
    if content_length is None:
        lines.append(b"Transfer-Encoding: chunked")
        chunks = b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + 4096]), body[i : i + 4096])
            for i in range(0, len(body), 4096)
        )
        return b"\r\n".join(lines) + b"\r\n\r\n" + chunks + b"0\r\n\r\n"
    length = len(body) if content_length == -1 else content_length
    lines.append(b"Content-Length: %d" % length)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def body(value: object) -> bytes:
    return json.dumps(value).encode()


def with_key(key: bytes, name: bytes = b"X-Api-Key") -> tuple[tuple[bytes, bytes], ...]:
    return ((name, key),)


@dataclass(frozen=True)
class Hostile:
    request: bytes
    status: int
    code: str


# Every row is refused before any Firestore read: the server under test has no Firestore at
# all, so a row that reached the store would get 503, not its 4xx.
HOSTILE: dict[str, Hostile] = {
    # -- malformed JSON ------------------------------------------------------------------
    "truncated JSON": Hostile(raw_post(b'{"generationId": "g"'), 400, "invalid_json"),
    "trailing garbage": Hostile(raw_post(b'{"generationId": "g"} x'), 400, "invalid_json"),
    "NaN is not JSON": Hostile(raw_post(b'{"generationId": NaN}'), 400, "invalid_json"),
    "empty body": Hostile(raw_post(b""), 400, "invalid_json"),
    "single quotes": Hostile(raw_post(b"{'generationId': 'g'}"), 400, "invalid_json"),
    "a number too long to parse": Hostile(raw_post(b"1" * 5000), 400, "invalid_json"),
    # -- huge JSON: refused unread, before the store ------------------------------------------
    "huge JSON": Hostile(
        raw_post(b'{"generationId": "g", "pad": "' + b"a" * LIMIT + b'"}'), 413, "body_too_large"
    ),
    "huge JSON, chunked (no Content-Length)": Hostile(
        raw_post(b'{"generationId": "g", "pad": "' + b"a" * LIMIT + b'"}', content_length=None),
        413,
        "body_too_large",
    ),
    # The client sends 16 bytes of a declared gigabyte, then waits: an answer proves the
    # function neither waits for nor buffers the body (send_raw gives up after 10 s).
    "1 GB declared, 16 bytes sent": Hostile(
        raw_post(b'{"generationId":', content_length=1 << 30), 413, "body_too_large"
    ),
    "1 GB declared on a PUT": Hostile(
        raw_post(b'{"generationId":', content_length=1 << 30, method=b"PUT"),
        405,
        "method_not_allowed",
    ),
    "exactly the limit is read (then judged as JSON)": Hostile(
        raw_post(b" " * LIMIT), 400, "invalid_json"
    ),
    # -- deeply nested JSON (RecursionError is not a ValueError) -----------------------------
    "deeply nested arrays": Hostile(raw_post(b"[" * 60_000), 400, "invalid_json"),
    "deeply nested objects": Hostile(
        raw_post(b'{"a":' * 10_000 + b"1" + b"}" * 10_000), 400, "invalid_json"
    ),
    "deep nesting inside a valid request": Hostile(
        raw_post(b'{"generationId": "g", "x": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"),
        400,
        "invalid_json",
    ),
    # -- bytes that are not UTF-8 JSON ---------------------------------------------------------
    "non-UTF-8 bytes": Hostile(raw_post(b'{"generationId": "\xff\xfe"}'), 400, "invalid_json"),
    "UTF-16 JSON": Hostile(raw_post('{"generationId": "g"}'.encode("utf-16")), 400, "invalid_json"),
    "overlong UTF-8 slash": Hostile(
        raw_post(b'{"generationId": "a\xc0\xafb"}'), 400, "invalid_json"
    ),
    "NUL bytes": Hostile(raw_post(b"\x00" * 64), 400, "invalid_json"),
    # -- duplicate keys ----------------------------------------------------------------------
    "duplicate generationId": Hostile(
        raw_post(b'{"generationId": "a", "generationId": "b"}'), 400, "invalid_json"
    ),
    "duplicate key in a nested object": Hostile(
        raw_post(b'{"generationId": "a", "x": {"k": 1, "k": 2}}'), 400, "invalid_json"
    ),
    # -- not an object, or the wrong types -------------------------------------------------
    "JSON array": Hostile(raw_post(b'["gen-1"]'), 400, "invalid_body"),
    "JSON null": Hostile(raw_post(b"null"), 400, "invalid_body"),
    "generationId a number": Hostile(
        raw_post(body({"generationId": 5})), 400, "generation_id_required"
    ),
    "generationId an object": Hostile(
        raw_post(body({"generationId": {"$ne": ""}})), 400, "generation_id_required"
    ),
    "generationId empty": Hostile(
        raw_post(body({"generationId": ""})), 400, "generation_id_required"
    ),
    "apiProjectId null": Hostile(
        raw_post(body({"generationId": "g", "apiProjectId": None})), 400, "invalid_api_project_id"
    ),
    # -- path-shaped and reserved ids ----------------------------------------------------------
    **{
        f"generationId {value!r}": Hostile(
            raw_post(body({"generationId": value})), 400, "invalid_generation_id"
        )
        for value in (
            "a/b",
            "gen-1/jobs/inference",
            "../../apiKeys/x",
            "/",
            ".",
            "..",
            "__name__",
            "__.*__",
            "a\u0000b",
            "line\nbreak",
            "\ud800",
            "é" * 751,  # 1,502 UTF-8 bytes: over Firestore's 1,500
        )
    },
    **{
        f"apiProjectId {value!r}": Hostile(
            raw_post(body({"generationId": "g", "apiProjectId": value})),
            400,
            "invalid_api_project_id",
        )
        for value in ("p/q", "..", "__p__", "x" * 1501)
    },
    # -- wrong auth schemes: no key was given -------------------------------------------------
    **{
        # The key is shown as <key> in the test id: ids must not vary between runs.
        f"Authorization {value.replace(UNSTORED_KEY.encode(), b'<key>')!r}": Hostile(
            raw_post(headers=with_key(value, b"Authorization")), 401, "api_key_missing"
        )
        for value in (
            b"Basic " + UNSTORED_KEY.encode(),
            b"Token " + UNSTORED_KEY.encode(),
            b"Digest username=x",
            b"Bearer",
            b"Bearer    ",
            b"Bearer\t" + UNSTORED_KEY.encode(),
            b"Bearer" + UNSTORED_KEY.encode(),
            UNSTORED_KEY.encode(),
        )
    },
    "empty X-Api-Key": Hostile(raw_post(headers=with_key(b"")), 401, "api_key_missing"),
    "whitespace Xi-Api-Key": Hostile(
        raw_post(headers=with_key(b"   ", b"Xi-Api-Key")), 401, "api_key_missing"
    ),
    # -- huge headers (within what the HTTP server itself accepts: 8 KiB a field) ------------
    "8 KB X-Api-Key": Hostile(raw_post(headers=with_key(b"k" * 8000)), 401, "api_key_invalid"),
    "8 KB bearer token": Hostile(
        raw_post(headers=with_key(b"Bearer " + b"k" * 8000, b"Authorization")),
        401,
        "api_key_invalid",
    ),
    "90 headers of 8 KB, no key": Hostile(
        raw_post(headers=tuple((b"X-Pad-%d" % i, b"p" * 8000) for i in range(90))),
        401,
        "api_key_missing",
    ),
}


@pytest.fixture(scope="module")
def storeless_url(serve_function_for_module: Callable[..., str]) -> str:
    """The function with no Firestore behind it: any read would answer 503 within 1 s."""
    return serve_function_for_module(
        FIRESTORE_EMULATOR_HOST=f"127.0.0.1:{emulator.free_port()}", FIRESTORE_TIMEOUT_SECONDS="1"
    )


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_request_gets_a_clear_4xx_without_a_firestore_read(
    storeless_url: str, name: str
) -> None:
    row = HOSTILE[name]
    reply = send_raw(storeless_url, row.request)
    assert reply.status == row.status, reply.body[:200]
    assert reply.headers["Content-Type"] == "application/json"
    error = reply.json()
    assert (error["code"], sorted(error)) == (row.code, ["code", "error"])
    assert error["error"]


def test_the_server_still_answers_normally_after_the_table(storeless_url: str) -> None:
    for row in HOSTILE.values():
        send_raw(storeless_url, row.request)
    assert send_raw(storeless_url, raw_post()).json()["code"] == "api_key_missing"


def test_a_header_field_over_the_servers_limit_is_a_4xx_and_serving_goes_on(
    storeless_url: str,
) -> None:
    # gunicorn (like Cloud Run's front end) refuses the request before the function runs,
    # so this 431 is the server's, not ours: what matters is that it is a 4xx, not a crash.
    reply = send_raw(storeless_url, raw_post(headers=with_key(b"k" * 70_000)))
    assert reply.status == 431
    assert send_raw(storeless_url, raw_post()).status == 401


NON_ASCII_KEYS = {
    "invalid UTF-8": b"\xff\xfe\xfd\xfc",
    "UTF-8 snowman": b"\xe2\x98\x83-snowman-key",
    "Latin-1": b"caf\xe9-latin-1",
    "continuation bytes": b"\x80" * 100,
}


def test_a_key_of_non_ascii_bytes_is_an_invalid_key(
    serve_function: Callable[..., str], seed: Seeder, subtests: pytest.Subtests
) -> None:
    seed.world()
    url = serve_function()
    for name, key in NON_ASCII_KEYS.items():
        for header in (b"X-Api-Key", b"Xi-Api-Key", b"Authorization"):
            value = b"Bearer " + key if header == b"Authorization" else key
            with subtests.test(f"{name} in {header.decode()}"):
                reply = send_raw(url, raw_post(headers=with_key(value, header)))
                assert (reply.status, reply.json()["code"]) == (401, "api_key_invalid")


def test_a_stored_non_ascii_key_matches_its_utf8_bytes(
    serve_function: Callable[..., str], seed: Seeder
) -> None:
    # Contract §1 hashes the key's UTF-8 bytes; a client sending those bytes is let in,
    # and the same text in another encoding is not.
    key = "ключ-" + new_key()
    seed.world()
    seed.api_key(key=key)
    url = serve_function()
    reply = send_raw(url, raw_post(headers=with_key(key.encode("utf-8"))))
    assert reply.status == 200, reply.body
    reply = send_raw(url, raw_post(headers=with_key(key.encode("cp1251"))))
    assert (reply.status, reply.json()["code"]) == (401, "api_key_invalid")


def test_a_preflight_with_a_declared_huge_body_is_answered_at_once(storeless_url: str) -> None:
    request = raw_post(b"{", content_length=1 << 30, method=b"OPTIONS")
    assert send_raw(storeless_url, request, timeout=5).status == 204
