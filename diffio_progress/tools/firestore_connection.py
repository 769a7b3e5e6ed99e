"""Firestore clients for the command-line tools, failing in one clear line."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from google.api_core import exceptions as google_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud import firestore

from diffio_progress.functions.config import FIRESTORE_EMULATOR_HOST, GOOGLE_CLOUD_PROJECT

from . import emulator

# The project `run` uses on the emulator when none is given.
LOCAL_PROJECT = "diffio-local"


class CliError(Exception):
    """A failure the user can act on; the CLI prints its message as one line and exits non-zero."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def firestore_client(
    project: str | None = None, environ: Mapping[str, str] | None = None
) -> firestore.Client:
    """A client for the emulator in FIRESTORE_EMULATOR_HOST, or for a real project.

    An emulator that does not answer, or a real project without a name or
    credentials, is a ``CliError`` now rather than a long hang later.
    """
    env = os.environ if environ is None else environ
    host = env.get(FIRESTORE_EMULATOR_HOST)
    if host:
        if not emulator.is_ready(host, timeout=2):
            raise CliError(
                f"The Firestore emulator at {host} (FIRESTORE_EMULATOR_HOST) is not running; "
                "start one with `python -m diffio_progress run`."
            )
        project = project or env.get(GOOGLE_CLOUD_PROJECT) or LOCAL_PROJECT
    else:
        project = project or env.get(GOOGLE_CLOUD_PROJECT)
        if not project:
            raise CliError(
                "No Firestore to use: set FIRESTORE_EMULATOR_HOST=host:port for an emulator, "
                "or GOOGLE_CLOUD_PROJECT (or --project) for a real project."
            )
    try:
        return firestore.Client(project=project)
    except auth_exceptions.GoogleAuthError as error:
        raise CliError(f"No Google Cloud credentials for project {project}: {error}") from None


@contextmanager
def firestore_errors(project: str) -> Iterator[None]:
    """Turn a Firestore failure inside the block into one line naming the project."""
    try:
        yield
    except auth_exceptions.GoogleAuthError as error:
        raise CliError(f"Google Cloud credentials failed for project {project}: {error}") from None
    except google_exceptions.GoogleAPIError as error:
        reason = getattr(error, "message", None) or type(error).__name__
        raise CliError(f"Firestore of project {project} failed: {reason}") from None
