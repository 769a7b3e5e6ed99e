"""Find, start, clear and stop a local Firestore emulator (for tests, `run` and the benchmark)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO

from .class_archive import archive_for
from .processes import stop_group

INSTALL_HELP = """\
No Firestore emulator was found. Install one of these, then try again:
  - Google Cloud CLI with its emulator, and Java 17+:
      gcloud components install cloud-firestore-emulator
      (Debian/Ubuntu: apt-get install google-cloud-cli-firestore-emulator openjdk-17-jre-headless)
  - firebase-tools:  npm install -g firebase-tools && firebase setup:emulators:firestore
Or start an emulator yourself and set FIRESTORE_EMULATOR_HOST=host:port."""

_SDK_ROOTS = (
    "/usr/lib/google-cloud-sdk",
    "/usr/share/google-cloud-sdk",
    "/opt/google-cloud-sdk",
    str(Path.home() / "google-cloud-sdk"),
)
_LAUNCHER = Path("platform/cloud-firestore-emulator/cloud_firestore_emulator")
# A local emulator is a lightly loaded JVM: the client compiler (C1) alone compiles what it
# needs at a fraction of the server compiler's CPU, and the serial collector keeps no threads
# busy on its small heap. 300 writes and reads cost its JVM 6 s of CPU instead of 10-11 s.
JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


class EmulatorNotFound(RuntimeError):
    def __init__(self, reason: str = "") -> None:
        super().__init__(f"{reason}\n{INSTALL_HELP}" if reason else INSTALL_HELP)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``port`` now.

    With SO_REUSEADDR, as servers themselves bind: connections left in
    TIME_WAIT by a server that just stopped do not make the port busy.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _sdk_roots() -> list[Path]:
    roots = [Path(p) for p in _SDK_ROOTS]
    gcloud = shutil.which("gcloud")
    if gcloud:
        # .../google-cloud-sdk/bin/gcloud, possibly behind a symlink.
        roots.insert(0, Path(os.path.realpath(gcloud)).parent.parent)
    return roots


def emulator_command(host: str, port: int, rules: Path | None = None) -> list[str]:
    """The command that starts an emulator on ``host:port``, fastest launcher first.

    1. the SDK's own launcher script (starts in about 2 s);
    2. ``gcloud emulators firestore start`` (about 10 s: gcloud itself is slow);
    3. ``firebase emulators:start`` (for users who only have firebase-tools).
    """
    java = shutil.which("java")
    for root in _sdk_roots():
        launcher = root / _LAUNCHER
        if launcher.is_file() and java:
            cmd = [str(launcher), "start", f"--host={host}", f"--port={port}"]
            return cmd + ([f"--rules={rules}"] if rules else [])
    gcloud = shutil.which("gcloud")
    if gcloud and java:
        cmd = [gcloud, "emulators", "firestore", "start", f"--host-port={host}:{port}"]
        return cmd + ([f"--rules={rules}"] if rules else [])
    firebase = shutil.which("firebase")
    if firebase:
        config = _firebase_config(host, port, rules)
        return [firebase, "emulators:start", "--only", "firestore", "--config", str(config)]
    if not java and (gcloud or any((r / _LAUNCHER).is_file() for r in _sdk_roots())):
        raise EmulatorNotFound("The Firestore emulator needs Java 17+, and `java` is not on PATH.")
    raise EmulatorNotFound()


def _firebase_config(host: str, port: int, rules: Path | None) -> Path:
    import json

    folder = Path(tempfile.mkdtemp(prefix="diffio-firebase-"))
    config: dict[str, object] = {"emulators": {"firestore": {"host": host, "port": port}}}
    if rules:
        config["firestore"] = {"rules": str(rules)}
    path = folder / "firebase.json"
    path.write_text(json.dumps(config))
    return path


def jvm_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment to start an emulator in: ``JVM_OPTIONS`` after any options of the user's."""
    env = dict(os.environ if environ is None else environ)
    env["JAVA_TOOL_OPTIONS"] = " ".join(filter(None, [env.get("JAVA_TOOL_OPTIONS"), JVM_OPTIONS]))
    return env


def is_ready(host_port: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host_port}/", timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def clear(host_port: str, project: str, database: str = "(default)") -> None:
    """Delete every document of ``project``'s ``database`` (the emulator's own REST endpoint)."""
    url = f"http://{host_port}/emulator/v1/projects/{project}/databases/{database}/documents"
    request = urllib.request.Request(url, method="DELETE")
    # Generous: a just-started emulator's first request can take seconds on a loaded machine.
    with urllib.request.urlopen(request, timeout=30):
        pass


class FirestoreEmulator:
    """A Firestore emulator process that this program owns; stop() leaves nothing running."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        rules: Path | None = None,
        startup_timeout: float = 90.0,
        java_options: str = "",
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.rules = rules
        self.startup_timeout = startup_timeout
        self.java_options = java_options
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def host_port(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> FirestoreEmulator:
        command = emulator_command(self.host, self.port, self.rules)
        # Opened only once there is an emulator to log (a restart gets a fresh log).
        if self._log is not None:
            self._log.close()
        self._log = tempfile.NamedTemporaryFile(prefix="firestore-emulator-", suffix=".log")
        env = jvm_environment()
        archive = archive_for(command, JVM_OPTIONS)
        # JDK_JAVA_OPTIONS, read by the java launcher only, so JAVA_TOOL_OPTIONS stays as it was.
        extra = [self.java_options] if self.java_options else []
        if not extra and archive is not None and archive.is_file():
            extra = [f"-XX:SharedArchiveFile={archive}"]
        if extra:
            env["JDK_JAVA_OPTIONS"] = " ".join(filter(None, [env.get("JDK_JAVA_OPTIONS"), *extra]))
        self.process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() gets the JVM too
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Firestore emulator exited early:\n{self.log_tail()}")
            if is_ready(self.host_port, timeout=0.5):
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Firestore emulator did not start in time:\n{self.log_tail()}")

    def stop(self, grace: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_group(process, grace)

    def close(self) -> None:
        """Stop it and close its log (a log left open is a ResourceWarning when collected)."""
        self.stop()
        log, self._log = self._log, None
        if log is not None:
            log.close()

    def log_tail(self, lines: int = 30) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        text = Path(self._log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> FirestoreEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
