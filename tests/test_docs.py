"""The README and docs/ agree with the repository on facts: links, commands, variables, size."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from diffio_progress.functions import config
from tests.project import ROOT

PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
# The README stays a front page: what it is, the commands, the answers, the map, links.
README_MAX_BYTES = 16_000


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of ``page`` (headings inside code blocks are not headings)."""
    text = FENCE.sub("", page.read_text())
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def broken_links(page: Path) -> list[str]:
    """Relative links in ``page`` whose file, or heading in it, does not exist."""
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto: ...
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists() or (anchor and anchor not in anchors(linked)):
            broken.append(target)
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_reaches_a_file_and_heading(page: Path) -> None:
    assert broken_links(page) == []


def test_the_link_check_finds_a_missing_page_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# A heading: it's here\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md#a-heading-its-here) [gone](gone.md) [no](there.md#nowhere) "
        "[web](https://example.com/x)\n```sh\n# not a heading\n```\n[self](#not-a-heading)\n"
    )
    assert broken_links(page) == ["gone.md", "there.md#nowhere", "#not-a-heading"]


def test_the_readme_is_a_front_page() -> None:
    assert len((ROOT / "README.md").read_bytes()) <= README_MAX_BYTES


def test_the_readme_commands_are_make_targets() -> None:
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in ("run", "test"):
        assert re.search(rf"^make {target}\b", readme, re.MULTILINE), target
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target


def test_every_environment_variable_has_a_row_in_the_docs() -> None:
    """config.py names each variable once, as a constant; each one has a table row."""
    names = [v for k, v in vars(config).items() if k.isupper() and k == v]
    assert "REAPER_BATCH" in names and "WEBHOOK_SINK" in names  # the scan sees them
    rows = "".join((ROOT / "docs" / page).read_text() for page in ("configuration.md", "events.md"))
    missing = [name for name in names if f"| `{name}` |" not in rows]
    assert missing == []
