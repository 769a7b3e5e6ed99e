"""Each deployed function built once per process from the environment: what main.py serves."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from diffio_progress.core.progress import LiveLookup

from . import logs
from .config import Settings
from .progress_handler import ProgressHandler
from .store import FirestoreStore

_default: ProgressHandler | None = None
_default_lock = threading.Lock()


def default_handler(environ: Mapping[str, str] | None = None) -> ProgressHandler:
    """The process-wide handler, built on first use from the environment."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = build_handler(Settings.from_env(environ))
    return _default


def build_handler(settings: Settings, store: FirestoreStore | None = None) -> ProgressHandler:
    """The handler as deployed; ``store`` replaces the default one (the benchmark counts RPCs)."""
    logs.configure()
    store = store or FirestoreStore(settings.firestore_timeout, project=settings.project)
    live_lookup: LiveLookup | None = None
    if settings.cloud_run_lookup:
        from .cloud_run import CloudRunLookup

        live_lookup = CloudRunLookup.from_settings(settings)
    return ProgressHandler(settings, store, live_lookup)


def reset_default_handler() -> None:
    """Forget the process-wide handler (tests change the environment between cases)."""
    global _default
    with _default_lock:
        _default = None
