"""The folders keep their promises: what is uploaded, what a worker loads, which way imports go."""

from __future__ import annotations

import ast
import shutil
import subprocess
from collections.abc import Iterable
from modulefinder import ModuleFinder
from pathlib import Path

import pytest

from tests.module_probe import loaded, modules_loaded_by
from tests.project import ROOT

PACKAGE = "diffio_progress"
# What each folder may import from this project (itself included), beyond the package root.
MAY_IMPORT = {
    "core": {"core"},
    "worker": {"core", "worker"},
    "functions": {"core", "worker", "functions"},
    "tools": {"core", "worker", "functions", "tools"},
    "bench": {"core", "worker", "functions", "tools", "bench"},
}
FORBIDDEN_IN_CORE = ("google", "flask", "grpc", "functions_framework", "cachetools", "httpx")
MAX_LINES = 300


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def finder_for(path: Path) -> ModuleFinder:
    """A modulefinder that has walked ``path``'s imports, transitively, lazy ones included.

    It searches the repository only, so it never descends into the standard
    library or site-packages; those names land in ``badmodules``. A module of
    the package is imported by name, so that its relative imports resolve.
    """
    finder = ModuleFinder(path=[str(ROOT)])
    if path.parent == ROOT:
        finder.run_script(str(path))
    else:
        finder.import_hook(module_name(path).removesuffix(".__init__"))
    return finder


def project_modules_reached(path: Path) -> dict[str, Path]:
    """Modules of this package that ``path`` imports, transitively (itself included)."""
    finder = finder_for(path)
    return {
        name: Path(module.__file__)
        for name, module in finder.modules.items()
        if name.split(".")[0] == PACKAGE and module.__file__
    }


def outside_imports(script: Path) -> set[str]:
    """Top-level names of what ``script`` imports that is not in this repository."""
    return {name.split(".")[0] for name in finder_for(script).badmodules}


def folder_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else None


def package_modules() -> list[Path]:
    return sorted((ROOT / PACKAGE).rglob("*.py"))


def test_a_deploy_uploads_exactly_the_modules_main_py_can_import() -> None:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.fail("gcloud is needed to check .gcloudignore (it deploys, too)", pytrace=False)
    listed = subprocess.run(
        [gcloud, "meta", "list-files-for-upload", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    modules = project_modules_reached(ROOT / "main.py").values()
    reached = {p.relative_to(ROOT).as_posix() for p in modules}
    # Every package on the way is uploaded with its __init__.py (modulefinder lists them too).
    packages = {(Path(m).parent / "__init__.py").as_posix() for m in reached}
    assert {f for f in listed if f.endswith(".py")} == {"main.py", *reached, *packages}
    assert set(listed) - {f for f in listed if f.endswith(".py")} == {"requirements.txt"}
    # The check has teeth: the tools and the benchmark exist, and none of them is uploaded.
    assert not [f for f in listed if f.startswith((f"{PACKAGE}/tools/", f"{PACKAGE}/bench/"))]
    assert (ROOT / PACKAGE / "tools" / "cli.py").is_file()


@pytest.mark.parametrize("module", package_modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_imports_point_only_down_or_sideways(module: Path) -> None:
    folder = folder_of(module_name(module))
    if folder is None:
        return  # the package root (__init__, __main__) may use any folder
    reached = {folder_of(name) for name in project_modules_reached(module)} - {None}
    assert reached <= MAY_IMPORT[folder], f"{folder}/ may not import {reached - MAY_IMPORT[folder]}"


# The deployed functions other than the progress poll: its cold start never loads them.
OTHER_FUNCTIONS = tuple(
    f"{PACKAGE}.functions.{name}" for name in ("events", "reaper", "webhooks", "relay")
)


def other_functions_in(modules: Iterable[str]) -> set[str]:
    """Which of the other functions' folders any of ``modules`` belongs to."""
    names = set(modules)
    return {f for f in OTHER_FUNCTIONS if any(m == f or m.startswith(f + ".") for m in names)}


def reached_by_entry_point(name: str) -> set[str]:
    """Modules of this package that main.py's entry point ``name`` reaches, transitively.

    What main.py imports at module level, plus what that one function's body imports
    (the other entry points import their own modules inside their bodies).
    """
    tree = ast.parse((ROOT / "main.py").read_text())
    [entry] = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == name]
    nodes = [n for n in tree.body if not isinstance(n, ast.FunctionDef)] + [entry]
    finder = ModuleFinder(path=[str(ROOT)])
    for node in (inner for n in nodes for inner in ast.walk(n)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
            finder.import_hook(str(node.module), None, [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE):
                    finder.import_hook(alias.name)
    return {m for m in finder.modules if m.split(".")[0] == PACKAGE}


@pytest.mark.parametrize(
    "module",
    sorted((ROOT / PACKAGE / "functions" / "progress").glob("*.py")),
    ids=lambda p: p.name,
)
def test_the_progress_function_imports_nothing_of_the_other_functions(module: Path) -> None:
    assert not other_functions_in(project_modules_reached(module))


@pytest.mark.parametrize(
    ("entry_point", "reaches"),
    [
        ("get_generation_progress", set()),
        # The walk has teeth: the other entry points do reach their own folders.
        ("on_generation_written", {f"{PACKAGE}.functions.events"}),
        ("reap_stalled_jobs", {f"{PACKAGE}.functions.reaper"}),
        # The relay sends through the event function's own machinery (lease, rank order).
        (
            "relay_pending_deliveries",
            {f"{PACKAGE}.functions.relay", f"{PACKAGE}.functions.events"},
        ),
    ],
)
def test_main_py_progress_entry_point_reaches_none_of_the_other_functions(
    entry_point: str, reaches: set[str]
) -> None:
    reached = reached_by_entry_point(entry_point)
    assert f"{PACKAGE}.functions.progress.wiring" in reached  # the walk sees main.py's imports
    assert other_functions_in(reached) == reaches


@pytest.mark.parametrize(
    "module",
    sorted((ROOT / PACKAGE / "core").glob("*.py")),
    ids=lambda p: p.name,
)
def test_the_pure_core_imports_no_io_library(module: Path) -> None:
    assert not outside_imports(module) & set(FORBIDDEN_IN_CORE)


def test_a_worker_imports_the_writers_without_flask_rich_or_httpx() -> None:
    modules = modules_loaded_by(
        "from diffio_progress.worker.stage_writer import StageWriter\n"
        "from diffio_progress.worker.generation_writer import GenerationWriter\n"
    )
    assert loaded(modules, "google.cloud.firestore")  # the probe sees what the writers do load
    for heavy in ("flask", "rich", "httpx", "werkzeug", "functions_framework"):
        assert not loaded(modules, heavy), heavy
    assert not loaded(modules, "diffio_progress.functions")
    assert not loaded(modules, "diffio_progress.tools")


@pytest.mark.parametrize("module", package_modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_module_says_what_it_does_and_stays_small(module: Path) -> None:
    text = module.read_text()
    docstring = ast.get_docstring(ast.parse(text))
    assert docstring, "a one-line docstring says what the module does"
    assert len(docstring.splitlines()[0]) > 20
    assert len(text.splitlines()) <= MAX_LINES


def test_tests_import_their_helpers_from_modules_never_from_a_conftest() -> None:
    """pytest loads a conftest.py itself; importing one as a module loads it twice."""
    offenders = [
        f"{path.relative_to(ROOT)}: {node.module}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("conftest")
    ]
    assert offenders == []
