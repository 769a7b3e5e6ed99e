"""The Firestore emulator's class-data-sharing archive: made once per machine, mapped by each start.

    python -m diffio_progress.tools.class_archive      (make test; .ci/run beside the install)

Each emulator start otherwise loads and verifies the emulator's classes from its jar again:
2.7 s of JVM CPU a start instead of 1.5 s, and twice the time to answer. The archive is named
by what it was made from (the java, the jar, the JVM options), so a new JDK, emulator or
``JVM_OPTIONS`` gets a new one rather than a stale one; a JVM that cannot map it says so in the
emulator's log and starts without. Where none can be made, nothing changes but the speed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

ARCHIVE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "diffio-progress"
_LAUNCHER_NAME = "cloud_firestore_emulator"
_JAR_NAME = "cloud-firestore-emulator.jar"


def archive_for(command: list[str], jvm_options: str) -> Path | None:
    """Where the archive of the emulator that ``command`` starts belongs (it may not exist yet).

    Only for the SDK's own launcher, whose jar is known.
    """
    java = shutil.which("java")
    launcher = Path(command[0])
    jar = launcher.parent / _JAR_NAME
    if java is None or launcher.name != _LAUNCHER_NAME or not jar.is_file():
        return None
    made_from = [os.path.realpath(java), str(jar), jvm_options]
    for path in (os.path.realpath(java), str(jar)):
        stat = os.stat(path)
        made_from += [str(stat.st_size), str(stat.st_mtime_ns)]
    key = hashlib.sha256("\0".join(made_from).encode()).hexdigest()[:16]
    return ARCHIVE_DIR / f"firestore-emulator-{key}.jsa"


def build() -> Path | None:
    """Make the archive unless it exists (about 7 s of CPU): an emulator that dumps at exit.

    Returns the archive, or ``None`` where none can be made (another launcher, no java, a
    dump that a JVM cannot map).
    """
    from . import emulator  # it maps the archive this module makes

    host = "127.0.0.1"
    command = emulator.emulator_command(host, 0)
    archive = archive_for(command, emulator.JVM_OPTIONS)
    if archive is None or archive.is_file():
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(f"{archive.stem}.{os.getpid()}.partial")
    dumping = emulator.FirestoreEmulator(host, java_options=f"-XX:ArchiveClassesAtExit={partial}")
    try:
        dumping.start()
        # The classes a test's first calls load, too: a write, a read, a clear.
        documents = f"http://{dumping.host_port}/v1/projects/archive/databases/(default)/documents"
        write = urllib.request.Request(
            f"{documents}/c/d", data=b'{"fields": {"n": {"integerValue": "1"}}}', method="PATCH"
        )
        with urllib.request.urlopen(write, timeout=30):
            pass
        with urllib.request.urlopen(f"{documents}/c/d", timeout=30):
            pass
        emulator.clear(dumping.host_port, "archive")
        # The JVM dumps at exit, after SIGTERM: seconds on a loaded machine, so no SIGKILL soon.
        dumping.stop(grace=120)
        check = subprocess.run(
            ["java", f"-XX:SharedArchiveFile={partial}", "-Xshare:on"]
            + ["-cp", str(Path(command[0]).parent / _JAR_NAME), "-version"],
            env=emulator.jvm_environment(),
            capture_output=True,
            timeout=60,
        )
        if check.returncode != 0:
            return None
        os.replace(partial, archive)
        return archive
    finally:
        dumping.close()
        partial.unlink(missing_ok=True)


def main() -> None:
    try:
        made = build()
    except (OSError, RuntimeError) as failed:  # EmulatorNotFound is a RuntimeError
        made = None
        print(f"No class archive for the emulator (its starts are only slower): {failed}")
    print(f"Emulator class archive: {made or 'none'}")


if __name__ == "__main__":
    main()
