"""Find the generation, read what can have changed in one batch, check ownership, compose."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from diffio_progress.core import paths
from diffio_progress.core.auth import Caller, authorize, check_owner
from diffio_progress.core.errors import ApiError, GenerationNotFound, NotOwner, StoreUnavailable
from diffio_progress.core.progress import LiveLookup, compose
from diffio_progress.core.stages import RESTORED_VIDEO, has_video

from ..caches import LockedCache
from ..clock import utcnow
from ..config import Settings
from ..store import Document, Documents, FirestoreStore, FoundGeneration
from .poll_memory import PollMemory, ReadPlan

# Generations never move to another project: remember where each one lives, per user
# (two tenants may use one id), and whose each key is (to know the user before the read).
_ID_CACHE_SIZE = 100_000
# Usable key documents, each for at most settings.api_key_cache_ttl seconds.
_KEY_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class PollRead:
    """One read's result, shared by every poll that joined it: the body or the error to
    answer, and what the request's log line tells of the key (``keyId``, ``userId``)."""

    body: dict[str, Any] | None = None
    error: ApiError | StoreUnavailable | None = None
    log_fields: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class _ApiKey:
    """The caller's key document: where it lives, and a recent copy if one is cached."""

    path: paths.DocPath
    cached: Document | None


class ProgressReader:
    """Answers one authenticated poll from Firestore; safe to share across threads.

    Every poll reads the key (unless cached), the generation and the job
    documents that may still change, in one batch; what never changes comes
    from ``PollMemory``. Ownership is checked on every poll.
    """

    def __init__(
        self,
        settings: Settings,
        store: FirestoreStore,
        live_lookup: LiveLookup | None = None,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.live_lookup = live_lookup
        self.clock = clock
        self.memory = PollMemory(monotonic)
        self._user_of: LockedCache[str, str] = LockedCache(_ID_CACHE_SIZE)
        # By (user id, generation id): where the user's generation was found and owned.
        self._project_of: LockedCache[tuple[str, str], str] = LockedCache(_ID_CACHE_SIZE)
        # By (user id, generation id): what a search by that user found in exactly one project.
        self._only_match: LockedCache[tuple[str, str], str] = LockedCache(_ID_CACHE_SIZE)
        # Saves the key lookup in most polls' batch; a TTL of 0 turns it off.
        self._keys: LockedCache[str, Document] = LockedCache(
            _KEY_CACHE_SIZE, ttl=settings.api_key_cache_ttl, timer=monotonic
        )
        # Runs the key read beside the collection-group query.
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="firestore")

    def read(self, key_hash: str, generation_id: str, api_project_id: str | None) -> PollRead:
        """Authenticate, find the generation, check ownership, compose the body; never raises
        an ``ApiError`` or ``StoreUnavailable``: the result carries it."""
        api_key = _ApiKey(paths.api_key(key_hash), self._keys.get(key_hash))
        if api_project_id is not None:
            return self._in_project(generation_id, api_project_id, api_key)
        # Per user: another tenant's polls never choose where this one's generation is
        # looked for. A key not seen to work yet has no user ("" is nobody's id): it searches.
        mine = (self._user_of.get(key_hash) or "", generation_id)
        remembered = self._project_of.get(mine)
        if remembered is None:
            return self._by_search(generation_id, api_key)
        read = self._in_project(generation_id, remembered, api_key)
        # Only our own memory is forgotten: a client's wrong apiProjectId
        # must not cost other pollers of this generation a new query.
        if isinstance(read.error, GenerationNotFound):
            self._project_of.pop(mine)
            self._only_match.pop(mine)
        # No longer the owner there: unless the user's search proved the id
        # unique, the user may have another generation with it; search.
        if not isinstance(read.error, NotOwner) or self._only_match.get(mine) == remembered:
            return read
        return self._by_search(generation_id, api_key)

    def _in_project(self, generation_id: str, project_id: str, api_key: _ApiKey) -> PollRead:
        """One batched read: key (unless cached), generation, and what else may have changed."""
        plan = self.memory.plan(project_id, generation_id)
        generation_path = paths.generation(project_id, generation_id)
        wanted = [generation_path, *_plan_paths(plan)]
        if api_key.cached is None:
            wanted.insert(0, api_key.path)
        try:
            docs = self.store.get_documents(wanted)
        except StoreUnavailable as error:
            return PollRead(error=error)
        return self._as_caller(
            api_key,
            docs.get(api_key.path),
            lambda caller: self._found_in_project(caller, generation_id, project_id, plan, docs),
        )

    def _found_in_project(
        self, caller: Caller, generation_id: str, project_id: str, plan: ReadPlan, docs: Documents
    ) -> dict[str, Any]:
        generation_path = paths.generation(project_id, generation_id)
        generation = docs[generation_path]
        if generation is None:
            self.memory.forget_generation(project_id, generation_id)
        elif self.memory.replaced(project_id, generation_id, docs.created.get(generation_path)):
            # Deleted and created again: what was remembered is read afresh (rare).
            plan = self.memory.plan(project_id, generation_id)
            docs.update(self.store.get_documents(_plan_paths(plan)))
        project = self._project(project_id, plan, docs)
        if project is None or generation is None:
            raise GenerationNotFound()
        check_owner(caller, project, generation)
        # Found and owned: a later poll without apiProjectId needs no query.
        self._project_of.set((caller.user_id, generation_id), project_id)
        return self._compose(generation_id, project_id, project, generation, plan, docs)

    def _by_search(self, generation_id: str, api_key: _ApiKey) -> PollRead:
        """First poll without apiProjectId: key read beside the query, then one batch."""
        key_read = None
        if api_key.cached is None:
            key_read = self._pool.submit(self.store.get_documents, [api_key.path])
        try:
            found = self.store.find_generations(generation_id)
            key_doc = key_read.result()[api_key.path] if key_read is not None else None
        except StoreUnavailable as error:
            return PollRead(error=error)
        return self._as_caller(
            api_key, key_doc, lambda caller: self._found_by_search(caller, generation_id, found)
        )

    def _found_by_search(
        self, caller: Caller, generation_id: str, found: list[FoundGeneration]
    ) -> dict[str, Any]:
        if not found:
            raise GenerationNotFound()
        if len(found) == 1:
            self._only_match.set((caller.user_id, generation_id), found[0].api_project_id)
        # Ids are unique in practice; if not, prefer the caller's own generation.
        match = next((g for g in found if g.data.get("userId") == caller.user_id), found[0])
        self.memory.replaced(match.api_project_id, generation_id, match.created)
        plan = self.memory.plan(match.api_project_id, generation_id)
        wanted = _plan_paths(plan)
        docs = self.store.get_documents(wanted) if wanted else Documents()
        project = self._project(match.api_project_id, plan, docs)
        if project is None:
            raise GenerationNotFound()
        check_owner(caller, project, match.data)
        self._project_of.set((caller.user_id, generation_id), match.api_project_id)
        return self._compose(generation_id, match.api_project_id, project, match.data, plan, docs)

    def _project(
        self, project_id: str, plan: ReadPlan, docs: dict[paths.DocPath, Document | None]
    ) -> Document | None:
        """The project just read, else the remembered one; a deletion is forgotten at once."""
        if plan.project_path is None:
            return dict(plan.project or {})
        project = docs[plan.project_path]
        if project is None:
            self.memory.forget_project(project_id)
        return project

    def _as_caller(
        self, api_key: _ApiKey, read: Document | None, then: Callable[[Caller], dict[str, Any]]
    ) -> PollRead:
        """Authorize from the cached key document, else from the one just read; then answer.

        Expiry is checked against now on every poll, cached or not. Only a
        fresh read (re)starts the TTL: refreshing it on use would keep a
        revoked key working for as long as its owner kept polling.
        """
        key_doc = api_key.cached if api_key.cached is not None else read
        key_id = key_doc.get("keyId") if key_doc is not None else None
        # Logged even when the key is refused: who still uses a revoked key matters.
        log_fields: dict[str, str | None] = {"keyId": key_id if isinstance(key_id, str) else None}
        try:
            caller = authorize(key_doc, self.clock())
            if api_key.cached is None and key_doc is not None:
                self._keys.set(api_key.path[-1], key_doc)
            self._user_of.set(api_key.path[-1], caller.user_id)
            log_fields = {"keyId": caller.key_id, "userId": caller.user_id}
            return PollRead(body=then(caller), log_fields=log_fields)
        except (ApiError, StoreUnavailable) as error:
            return PollRead(error=error, log_fields=log_fields)

    def _compose(
        self,
        generation_id: str,
        project_id: str,
        project: Document,
        generation: Document,
        plan: ReadPlan,
        docs: dict[paths.DocPath, Document | None],
    ) -> dict[str, Any]:
        read_project = docs.get(plan.project_path) if plan.project_path is not None else None
        self.memory.learn(project_id, read_project, {p: docs[p] for p in plan.job_paths.values()})
        jobs = plan.jobs(docs)
        if has_video(project) and RESTORED_VIDEO not in jobs:
            # Only if a project gained video after we remembered it as audio.
            path = paths.job(project_id, generation_id, RESTORED_VIDEO)
            jobs[RESTORED_VIDEO] = self.store.get_documents([path])[path]
        return compose(generation_id, project_id, project, jobs, self.live_lookup, generation)


def _plan_paths(plan: ReadPlan) -> list[paths.DocPath]:
    """The project (when due) and the job documents a plan reads."""
    project = [plan.project_path] if plan.project_path is not None else []
    return [*project, *plan.job_paths.values()]
