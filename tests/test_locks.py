"""The locks: complete, hashed, the .in pins kept, closed under dependencies on 3.11 and 3.12."""

from __future__ import annotations

import re
from importlib import metadata

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.project import ROOT

LOCKS = {"requirements.txt": "requirements.in", "requirements-dev.txt": "requirements-dev.in"}
# The Python here, and python312 deployed.
PYTHONS = ("3.11", "3.12")


def environment(python: str) -> dict[str, str]:
    """A Linux CPython marker environment, as on this machine and on Cloud Functions."""
    return {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "platform_python_implementation": "CPython",
        "implementation_name": "cpython",
        "extra": "",
    }


def entries(lock: str) -> list[tuple[str, str, str, list[str]]]:
    """Each locked package: (name, version, marker, hashes)."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / lock).read_text())
    found = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement, *options = line.split(" --")
        spec, _, marker = requirement.partition(";")
        name, _, version = spec.strip().partition("==")
        hashes = [o.removeprefix("hash=").strip() for o in options if o.startswith("hash=")]
        found.append((str(canonicalize_name(name)), version, marker.strip(), hashes))
    return found


def locked(lock: str, python: str) -> dict[str, str]:
    """The versions that ``pip install -r lock`` installs on ``python``."""
    chosen: dict[str, str] = {}
    for name, version, marker, _ in entries(lock):
        if not marker or Marker(marker).evaluate(environment(python)):
            assert name not in chosen, f"{name} twice for Python {python} in {lock}"
            chosen[name] = version
    return chosen


def pins(source: str) -> list[Requirement]:
    """The requirements of an .in file, those of the files it includes (-r) too."""
    found = []
    for line in (ROOT / source).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found += pins(line.removeprefix("-r ").strip())
        elif line and not line.startswith("-"):
            found.append(Requirement(line))
    return found


@pytest.mark.parametrize("lock", LOCKS)
def test_every_locked_package_is_pinned_exactly_with_sha256_hashes(lock: str) -> None:
    found = entries(lock)
    assert len(found) > 40, lock  # the whole tree, not only the direct pins
    for name, version, _, hashes in found:
        assert re.fullmatch(r"[\w.+!]+", version), (name, version)
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), name


@pytest.mark.parametrize(("lock", "source"), LOCKS.items())
def test_the_lock_keeps_every_exact_pin_of_its_in_file(lock: str, source: str) -> None:
    for python in PYTHONS:
        versions = locked(lock, python)
        for requirement in pins(source):
            [pin] = requirement.specifier
            assert pin.operator == "==", requirement  # exact pins in the .in files
            assert versions[canonicalize_name(requirement.name)] == pin.version, requirement


def test_tests_run_on_the_deployed_versions() -> None:
    for python in PYTHONS:
        deployed, dev = locked("requirements.txt", python), locked("requirements-dev.txt", python)
        assert {name: dev.get(name) for name in deployed} == deployed


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize(("lock", "source"), LOCKS.items())
def test_the_lock_holds_everything_its_packages_require(
    lock: str, source: str, python: str
) -> None:
    """Walks Requires-Dist (with extras and markers) from the .in file through the lock."""
    versions = locked(lock, python)
    todo = [(canonicalize_name(r.name), frozenset(r.extras)) for r in pins(source)]
    seen = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        assert name in versions, f"{name} is required but not locked for Python {python}"
        # The installed distribution is the locked one (make installs the dev lock).
        distribution = metadata.distribution(name)
        assert distribution.version == versions[name], name
        for line in distribution.requires or []:
            requirement = Requirement(line)
            wanted = any(
                requirement.marker is None
                or requirement.marker.evaluate({**environment(python), "extra": extra})
                for extra in ("", *extras)
            )
            if wanted:
                required = canonicalize_name(requirement.name)
                assert required in versions, f"{name} needs {requirement}: not locked ({python})"
                assert requirement.specifier.contains(versions[required], prereleases=True), (
                    f"{name} needs {requirement}, the lock has {versions[required]}"
                )
                todo.append((required, frozenset(requirement.extras)))
    assert {name for name, _ in seen} == set(versions), "locked but required by nothing"


def test_make_installs_only_hashed_packages_and_locks_as_the_header_says() -> None:
    makefile = (ROOT / "Makefile").read_text()
    install = makefile[makefile.index("$(STAMP):") :].split("\n\n")[0]
    installs = [line for line in install.splitlines() if "-r requirements-dev.txt" in line]
    assert len(installs) == 2 and all("--require-hashes" in line for line in installs)  # uv, pip
    lock_flags = re.search(
        r"^LOCK := \$\(VENV\)/bin/uv pip compile --quiet (.*?)\n\S", makefile, re.M | re.S
    )
    assert lock_flags, makefile
    flags = lock_flags.group(1).replace("\\\n", " ").split()
    for lock, source in LOCKS.items():
        header = (ROOT / lock).read_text().splitlines()[1]
        assert header.split() == ["#", "uv", "pip", "compile", *flags, source, "-o", lock]
    # uv itself is installed from its hashed entry in the dev lock, at the Makefile's version.
    uv_version = re.search(r"^UV_VERSION := (\S+)$", makefile, re.M)
    assert uv_version and uv_version.group(1) == "0.13.9"
    assert locked("requirements-dev.txt", "3.11")["uv"] == uv_version.group(1)
    assert "--require-hashes --no-deps \\\n\t    -r $(VENV)/uv-lock.txt" in install
    assert not re.search(r"pip install[^\n]*uv==", makefile)  # no unhashed bootstrap
