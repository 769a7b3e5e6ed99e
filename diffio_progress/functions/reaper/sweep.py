"""One reaper call: find stale stages, ask Cloud Run, fail the dead ones, move the cursor on."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from diffio_progress.core.job_updates import REAPED_JOB_STATES
from diffio_progress.core.paths import DocPath
from diffio_progress.core.reaping import (
    CANDIDATE_STATUSES,
    AskCloudRun,
    Examined,
    Malformed,
    Skip,
    Summary,
    examine,
    next_cursor,
    reached,
)
from diffio_progress.core.stages import LiveExecution

from ..clock import utcnow
from ..cloud_run import LookupResult
from .lookups import LookupInOrder
from .store import Candidate, ReaperStore

log = logging.getLogger(__name__)

# Stages written at once; each write is a transaction of three round trips.
_WRITERS = 8


@dataclass(frozen=True)
class Death:
    """A stage whose execution Cloud Run reports ended: dead, or exited without a result."""

    path: DocPath
    execution_name: str
    live: LiveExecution


class Reaper:
    """Ends the stages of dead workers as failed (events contract §5). Safe to run concurrently.

    Each call reads the cursor, takes up to ``batch`` stale stages after it,
    looks up as many executions as it can start within the lookup deadline,
    writes the dead ones failed, and saves where the next call goes on.
    """

    def __init__(
        self,
        store: ReaperStore,
        lookup: LookupInOrder,
        *,
        min_age_seconds: float,
        batch: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.lookup = lookup
        self.min_age = timedelta(seconds=min_age_seconds)
        self.batch = batch
        self.clock = clock

    def __call__(self) -> Summary:
        saved = self.store.read_cursor()
        before = self.clock() - self.min_age
        page = self.store.stale_jobs(CANDIDATE_STATUSES, before, saved.cursor.after, self.batch)
        examined = [examine(c.position.path, c.data) for c in page]
        results = self.lookup([i.execution_name for i in examined if isinstance(i, AskCloudRun)])
        done = reached(examined, started=len(results))
        checked, errors, dead = self._settle(page[:done], examined[:done], iter(results))
        failed = self._reap(dead)
        # Saved last: if Firestore fails above, the next call does this page again.
        cursor = next_cursor(saved.cursor, [c.position for c in page], done, self.batch)
        self.store.save_cursor(cursor, saved)
        return Summary(checked, failed, errors)

    def _settle(
        self,
        candidates: Sequence[Candidate],
        examined: Sequence[Examined],
        results: Iterator[LookupResult],
    ) -> tuple[int, int, list[Death]]:
        """Counts checked stages and lookup errors (warning about each); returns the dead."""
        checked = errors = 0
        dead: list[Death] = []
        for candidate, item in zip(candidates, examined, strict=True):
            path = candidate.position.path
            if isinstance(item, Skip):
                if item.reason is not None:
                    log.warning("reaper: skipping %s: %s", "/".join(path), item.reason)
                continue
            checked += 1
            if isinstance(item, Malformed):
                problem, name = item.reason, None
            else:
                result, name = next(results), item.execution_name
                if isinstance(result, LiveExecution):
                    if result.job_state in REAPED_JOB_STATES:
                        dead.append(Death(path, name, result))
                    continue
                problem = result.reason
            errors += 1
            log.warning(
                "reaper: no state for the execution of %s (%s); nothing written",
                "/".join(path),
                problem,
                extra={"fields": {"jobPath": "/".join(path), "executionName": name}},
            )
        return checked, errors, dead

    def _reap(self, dead: list[Death]) -> int:
        """Write the dead stages failed, a few at once; how many this call wrote.

        In a random order: a concurrent call on the same page then seldom reaches
        the same stage at the same moment, and transactions on one document
        that collide cost a retry each.
        """
        if not dead:
            return 0
        with ThreadPoolExecutor(_WRITERS, thread_name_prefix="reaper") as pool:
            wrote = list(pool.map(self._fail, random.sample(dead, len(dead))))
        return sum(wrote)

    def _fail(self, death: Death) -> bool:
        wrote = self.store.fail_stage(death.path, death.execution_name, death.live)
        if wrote:
            path = "/".join(death.path)
            log.info(
                "reaper: %s failed: its execution is %s",
                path,
                death.live.job_state,
                extra={"fields": {"jobPath": path, "executionName": death.execution_name}},
            )
        return wrote
