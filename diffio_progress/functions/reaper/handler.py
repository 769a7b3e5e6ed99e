"""`reap_stalled_jobs` over HTTP: a POST runs the reaper once and answers its summary as JSON."""

from __future__ import annotations

from collections.abc import Mapping

from .. import logs
from ..config import Settings
from ..firestore import FirestoreConnection
from ..once_per_process import OncePerProcess
from ..scheduled import ScheduledHandler
from .lookups import ReaperLookup
from .store import ReaperStore
from .sweep import Reaper


class ReaperHandler(ScheduledHandler):
    """One reaper pass per call. An outage loses nothing half-done: the cursor was not
    saved, the next call redoes the page."""

    def __init__(self, settings: Settings, reaper: Reaper) -> None:
        super().__init__(settings, lambda: reaper().to_dict())
        self.reaper = reaper


def build_reaper_handler(
    settings: Settings, store: ReaperStore | None = None, lookup: ReaperLookup | None = None
) -> ReaperHandler:
    """The handler as deployed; ``store`` and ``lookup`` replace the defaults (the benchmark)."""
    logs.configure()
    store = store or ReaperStore(FirestoreConnection.from_settings(settings))
    lookup = lookup or ReaperLookup.from_settings(settings)
    reaper = Reaper(
        store,
        lookup,
        min_age_seconds=settings.reaper_min_age_seconds,
        batch=settings.reaper_batch,
    )
    return ReaperHandler(settings, reaper)


_default: OncePerProcess[ReaperHandler] = OncePerProcess(build_reaper_handler)


def default_reaper_handler(environ: Mapping[str, str] | None = None) -> ReaperHandler:
    """The process-wide handler, built on first use from the environment."""
    return _default.get(environ)


def reset_default_reaper_handler() -> None:
    """Forget the process-wide handler (tests change the environment between cases)."""
    _default.reset()
