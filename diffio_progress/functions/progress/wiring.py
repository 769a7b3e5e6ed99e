"""Each deployed function built once per process from the environment: what main.py serves."""

from __future__ import annotations

from collections.abc import Mapping

from diffio_progress.core.progress import LiveLookup

from .. import logs
from ..config import Settings
from ..firestore import FirestoreConnection
from ..once_per_process import OncePerProcess
from ..store import FirestoreStore
from .handler import ProgressHandler


def build_handler(settings: Settings, store: FirestoreStore | None = None) -> ProgressHandler:
    """The handler as deployed; ``store`` replaces the default one (the benchmark counts RPCs)."""
    logs.configure()
    store = store or FirestoreStore(FirestoreConnection.from_settings(settings))
    live_lookup: LiveLookup | None = None
    if settings.cloud_run_lookup:
        from .live_states import PollLookup

        live_lookup = PollLookup.from_settings(settings)
    return ProgressHandler(settings, store, live_lookup)


_default: OncePerProcess[ProgressHandler] = OncePerProcess(build_handler)


def default_handler(environ: Mapping[str, str] | None = None) -> ProgressHandler:
    """The process-wide handler, built on first use from the environment."""
    return _default.get(environ)


def reset_default_handler() -> None:
    """Forget the process-wide handler (tests change the environment between cases)."""
    _default.reset()
