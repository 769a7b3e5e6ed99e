"""Which strings may be joined into a Firestore document path (ids.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from diffio_progress.core import paths
from diffio_progress.core.ids import MAX_ID_BYTES, is_document_id


@pytest.mark.parametrize(
    "value",
    [
        "gen-1",
        "proj_123",
        "a" * MAX_ID_BYTES,
        "é" * (MAX_ID_BYTES // 2),  # 1,500 bytes exactly
        "gén-ü-日本-😀",
        "gen 1",
        "_x_",
        "__x",
        "x__",
        "...",
        ".x",
        "gen.1",
        "\u00a0",  # no-break space is printable, not a control character
    ],
)
def test_accepts_valid_document_ids(value: str) -> None:
    assert is_document_id(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "/",
        "gen-1/jobs/inference",
        "gen-1/",
        "/gen-1",
        ".",
        "..",
        "__x__",
        "____",
        "__.*__",
        "a" * (MAX_ID_BYTES + 1),
        "é" * (MAX_ID_BYTES // 2 + 1),  # 1,502 bytes in 751 characters
        "gen\x00",
        "gen\n1",
        "gen\t1",
        "gen\x1b",
        "gen\x7f",
        "gen\x85",  # C1 control (NEL)
        "\ud800",  # lone surrogate: not encodable as UTF-8
        "gen\udfff",
        None,
        1,
        ["gen-1"],
        b"gen-1",
    ],
)
def test_refuses_strings_that_can_never_be_document_ids(value: object) -> None:
    assert not is_document_id(value)


@pytest.mark.parametrize(
    "build",
    [
        lambda: paths.project("p/generations/g"),
        lambda: paths.generation("p", "g/jobs/inference"),
        lambda: paths.job("p", "..", "inference"),
        lambda: paths.api_key(""),
    ],
)
def test_paths_refuse_to_join_an_invalid_segment(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()


def test_paths_are_the_contract_layout() -> None:
    assert paths.api_key("abc") == ("apiKeys", "abc")
    assert paths.project("p") == ("apiProjects", "p")
    assert paths.generation("p", "g") == ("apiProjects", "p", "generations", "g")
    assert paths.job("p", "g", "inference") == (
        "apiProjects",
        "p",
        "generations",
        "g",
        "jobs",
        "inference",
    )


@pytest.mark.parametrize(
    ("path", "project"),
    [
        (("apiProjects", "p", "generations", "g"), "p"),
        (("users", "u", "generations", "g"), None),
        (("apiProjects", "p", "generations", "g", "jobs", "x"), None),
        (("apiProjects", "p", "jobs", "x", "generations", "g"), None),
        (("generations", "g"), None),
        (("apiProjects", "p", "other", "g"), None),
    ],
)
def test_only_generations_under_api_projects_belong_to_the_contract(
    path: tuple[str, ...], project: str | None
) -> None:
    assert paths.project_of_generation(path) == project
