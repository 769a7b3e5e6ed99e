"""The shell: validate, authenticate, fetch, compose, respond; and log one line."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import flask

from diffio_progress.core import paths
from diffio_progress.core.auth import (
    Caller,
    authorize,
    check_owner,
    hash_api_key,
    header_bytes,
    invalid_key,
    missing_key,
)
from diffio_progress.core.errors import ApiError, StoreUnavailable
from diffio_progress.core.progress import LiveLookup, compose
from diffio_progress.core.request import (
    MAX_API_KEY_CHARS,
    ProgressQuery,
    check_method,
    extract_api_key,
    parse_body,
)
from diffio_progress.core.stages import RESTORED_VIDEO, has_video, stage_names

from . import logs
from .caches import LockedCache
from .config import Settings
from .responses import error_response, json_response, preflight
from .store import Document, FirestoreStore

log = logging.getLogger(__name__)

# Generations and projects never move or change media type: remember them.
_ID_CACHE_SIZE = 100_000
# Usable key documents, each for at most settings.api_key_cache_ttl seconds.
_KEY_CACHE_SIZE = 10_000


def _not_found() -> ApiError:
    return ApiError(404, "generation_not_found", "Generation not found")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _ApiKey:
    """The caller's key document: where it lives, and a recent copy if one is cached."""

    path: paths.DocPath
    cached: Document | None


class ProgressHandler:
    """Answers ``get_generation_progress`` requests; safe to share across threads."""

    def __init__(
        self,
        settings: Settings,
        store: FirestoreStore,
        live_lookup: LiveLookup | None = None,
        clock: Callable[[], datetime] = _utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self.live_lookup = live_lookup
        self.clock = clock
        self._project_of: LockedCache[str, str] = LockedCache(_ID_CACHE_SIZE)
        # Generations that a search found in exactly one project.
        self._only_match: LockedCache[str, str] = LockedCache(_ID_CACHE_SIZE)
        self._video: LockedCache[str, bool] = LockedCache(_ID_CACHE_SIZE)
        # Saves the key lookup in most polls' batch; a TTL of 0 turns it off.
        self._keys: LockedCache[str, Document] = LockedCache(
            _KEY_CACHE_SIZE, ttl=settings.api_key_cache_ttl, timer=monotonic
        )
        # Runs the key read beside the collection-group query.
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="firestore")

    # -- HTTP boundary ---------------------------------------------------

    def __call__(self, request: flask.Request) -> flask.Response:
        started = time.perf_counter()
        origin = request.headers.get("Origin")
        context: dict[str, Any] = {}
        response = self._respond(request, origin, context)
        # A body we never read (OPTIONS, 405) must stay unread: functions-framework
        # would read all of it into memory before answering. gunicorn discards it.
        if getattr(request, "_cached_data", None) is None:
            request._cached_data = b""
        logs.log_request(
            method=request.method,
            path=request.path,
            status=response.status_code,
            latency_seconds=time.perf_counter() - started,
            user_agent=request.headers.get("User-Agent"),
            remote_ip=request.remote_addr,
            trace=logs.trace_fields(request.headers, self.settings.project),
            context=context,
        )
        return response

    def _respond(
        self, request: flask.Request, origin: str | None, context: dict[str, Any]
    ) -> flask.Response:
        try:
            if request.method == "OPTIONS":
                return preflight(self.settings, origin)
            check_method(request.method)
            query = parse_body(self._read_body(request))
            context["generationId"] = query.generation_id
            body = self.progress(query, request.headers, context)
            return json_response(self.settings, origin, 200, body)
        except ApiError as error:
            context["code"] = error.code
            return error_response(self.settings, origin, error)
        except StoreUnavailable:
            context["code"] = "unavailable"
            return error_response(
                self.settings,
                origin,
                ApiError(
                    503,
                    "unavailable",
                    "Service temporarily unavailable; retry shortly",
                    {"Retry-After": "1"},
                ),
            )
        except Exception:
            # The stack trace goes to the log; the client learns nothing internal.
            log.exception("unexpected error answering a progress request")
            context["code"] = "internal_error"
            return error_response(
                self.settings, origin, ApiError(500, "internal_error", "Internal error")
            )

    def _read_body(self, request: flask.Request) -> bytes:
        limit = self.settings.max_body_bytes
        too_large = ApiError(413, "body_too_large", f"Request body must be at most {limit} bytes")
        if request.content_length is not None and request.content_length > limit:
            # Mark the body as read, or functions-framework reads all of it into memory
            # before our 413 goes out (and waits for every byte a slow client trickles).
            request._cached_data = b""
            raise too_large
        raw = request.stream.read(limit + 1)
        # functions-framework reads the whole body after we answer unless it
        # finds it cached; caching what we read keeps a huge body out of memory.
        request._cached_data = raw
        if len(raw) > limit:
            raise too_large
        return raw

    # -- the request, after parsing ---------------------------------------

    def progress(
        self, query: ProgressQuery, headers: Any, context: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Authenticate, find the generation, check ownership, compose the body."""
        context = {} if context is None else context
        key = extract_api_key(headers)
        if key is None:
            raise missing_key()
        if len(key) > MAX_API_KEY_CHARS:
            raise invalid_key()
        key_hash = hash_api_key(header_bytes(key))
        api_key = _ApiKey(paths.api_key(key_hash), self._keys.get(key_hash))
        if query.api_project_id is not None:
            return self._progress_in_project(
                query.generation_id, query.api_project_id, api_key, context
            )
        remembered = self._project_of.get(query.generation_id)
        if remembered is None:
            return self._progress_by_search(query.generation_id, api_key, context)
        try:
            return self._progress_in_project(query.generation_id, remembered, api_key, context)
        except ApiError as error:
            # Only our own memory is forgotten: a client's wrong apiProjectId
            # must not cost other pollers of this generation a new query.
            if error.code == "generation_not_found":
                self._project_of.pop(query.generation_id)
                self._only_match.pop(query.generation_id)
            # The memory is shared by all callers. Unless a search proved the id
            # unique, another tenant may have a generation with the same id,
            # and it must not hide the caller's own: search for it.
            if error.code != "forbidden" or self._only_match.get(query.generation_id) == remembered:
                raise
        return self._progress_by_search(query.generation_id, api_key, context)

    def _progress_in_project(
        self,
        generation_id: str,
        project_id: str,
        api_key: _ApiKey,
        context: dict[str, Any],
    ) -> dict[str, Any]:
        """One batched read: key (unless cached), project, generation and the job documents."""
        project_path = paths.project(project_id)
        generation_path = paths.generation(project_id, generation_id)
        job_paths = self._job_paths(project_id, generation_id)
        wanted = [project_path, generation_path, *job_paths.values()]
        if api_key.cached is None:
            wanted.insert(0, api_key.path)
        docs = self.store.get_documents(wanted)
        caller = self._authorize(api_key, docs.get(api_key.path), context)
        project, generation = docs[project_path], docs[generation_path]
        if project is None or generation is None:
            raise _not_found()
        check_owner(caller, project, generation)
        # Found and owned: a later poll without apiProjectId needs no query.
        self._project_of.set(generation_id, project_id)
        jobs = {stage: docs[path] for stage, path in job_paths.items()}
        return self._compose(generation_id, project_id, project, generation, jobs)

    def _progress_by_search(
        self, generation_id: str, api_key: _ApiKey, context: dict[str, Any]
    ) -> dict[str, Any]:
        """First poll without apiProjectId: key read beside the query, then one batch."""
        key_read = None
        if api_key.cached is None:
            key_read = self._pool.submit(self.store.get_documents, [api_key.path])
        found = self.store.find_generations(generation_id)
        key_doc = key_read.result()[api_key.path] if key_read is not None else None
        caller = self._authorize(api_key, key_doc, context)
        if not found:
            raise _not_found()
        if len(found) == 1:
            self._only_match.set(generation_id, found[0].api_project_id)
        # Ids are unique in practice; if not, prefer the caller's own generation.
        match = next((g for g in found if g.data.get("userId") == caller.user_id), found[0])
        project_path = paths.project(match.api_project_id)
        job_paths = self._job_paths(match.api_project_id, generation_id)
        docs = self.store.get_documents([project_path, *job_paths.values()])
        project = docs[project_path]
        if project is None:
            raise _not_found()
        check_owner(caller, project, match.data)
        self._project_of.set(generation_id, match.api_project_id)
        jobs = {stage: docs[path] for stage, path in job_paths.items()}
        return self._compose(generation_id, match.api_project_id, project, match.data, jobs)

    def _authorize(
        self, api_key: _ApiKey, read: Document | None, context: dict[str, Any]
    ) -> Caller:
        """Authorize from the cached key document, else from the one just read.

        Expiry is checked against now on every poll, cached or not. Only a
        fresh read (re)starts the TTL: refreshing it on use would keep a
        revoked key working for as long as its owner kept polling.
        """
        key_doc = api_key.cached if api_key.cached is not None else read
        if key_doc is not None and isinstance(key_doc.get("keyId"), str):
            # Logged even when the key is refused: who still uses a revoked key matters.
            context["keyId"] = key_doc["keyId"]
        caller = authorize(key_doc, self.clock())
        if api_key.cached is None and key_doc is not None:
            self._keys.set(api_key.path[-1], key_doc)
        context.update(keyId=caller.key_id, userId=caller.user_id)
        return caller

    def _job_paths(self, project_id: str, generation_id: str) -> dict[str, paths.DocPath]:
        """The job documents to read; until the project's media type is known, video's too."""
        known = self._video.get(project_id)
        return {s: paths.job(project_id, generation_id, s) for s in stage_names(known is not False)}

    def _compose(
        self,
        generation_id: str,
        project_id: str,
        project: Document,
        generation: Document,
        jobs: dict[str, Document | None],
    ) -> dict[str, Any]:
        video = has_video(project)
        self._video.set(project_id, video)
        if video and RESTORED_VIDEO not in jobs:
            # Only if a project gained video after we cached it as audio.
            path = paths.job(project_id, generation_id, RESTORED_VIDEO)
            jobs[RESTORED_VIDEO] = self.store.get_documents([path])[path]
        return compose(generation_id, project_id, project, jobs, self.live_lookup, generation)
