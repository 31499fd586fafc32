"""Fetching one series' metadata and frames: through the scheduler, shared in flight, cached.

Knows how to get a thing and where to keep it (memory cache, disk cache for metadata), not
when it is wanted: the loader (loader.py) decides that and passes the lane and the owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tui.dicomweb.errors import DicomWebError, MalformedAnswer
from tui.dicomweb.requestlog import strip_userinfo

from .cache import DiskCache, MemoryCache
from .results import FrameResult, SeriesMetadata
from .scheduler import LANES, Job, Scheduler
from .state import LoadState, NodeKey, NodeState, StateStore
from .strategies import StrategyMemory, fetch_instances

if TYPE_CHECKING:
    from tui.config import Settings
    from tui.dicomweb.model import Instance

log = logging.getLogger(__name__)


def _lane_for(purpose: str) -> str:
    return purpose if purpose in LANES else "selected"


def _client_purpose(purpose: str) -> str:
    """The purpose the client records with the request (it knows no other)."""
    return purpose if purpose in ("selected", "prefetch", "triage") else "selected"


# Python memory per DICOM JSON attribute once parsed (dicts, lists, strings): about 440
# bytes, measured with tracemalloc on the sample's full metadata. Counting attributes is
# cheap enough for the event loop, unlike serialising every instance again to weigh it.
ATTRIBUTE_BYTES = 440


def _estimate_size(instances: Sequence[Instance]) -> int:
    """Bytes a metadata entry takes in memory, estimated from its attribute count."""
    return sum(len(i.raw) for i in instances) * ATTRIBUTE_BYTES + 64


class SeriesFetcher:
    """Gets series metadata and frames as scheduler jobs and caches what came."""

    def __init__(
        self,
        client: Any,
        settings: Settings,
        *,
        clock: Callable[[], float],
        store: StateStore,
        scheduler: Scheduler,
        cache: MemoryCache,
        disk_cache: DiskCache | None,
        memory: StrategyMemory,
    ) -> None:
        """`client` is a DicomWebClient; the rest is shared with the loader that owns this."""
        self.client = client
        self.settings = settings
        self.clock = clock
        # The key of the disk cache and of the strategy memory; the disk cache writes it into
        # its files, so a user:password@ in the configured URL must not be part of it.
        self.server_url = strip_userinfo(settings.server.url)
        self.store = store
        self.scheduler = scheduler
        self.cache = cache
        self.disk_cache = disk_cache
        self.memory = memory

    # -- metadata ------------------------------------------------------------------------
    def peek_metadata(self, study_uid: str, series_uid: str) -> SeriesMetadata | None:
        """The cached metadata, if any, without fetching."""
        found: SeriesMetadata | None = self.cache.peek(("series", study_uid, series_uid))
        return found

    async def metadata(
        self, study_uid: str, series_uid: str, purpose: str, owner: object | None
    ) -> SeriesMetadata:
        """One series' metadata, from the cache or a (shared) job; `owner` None: this task."""
        key = ("series", study_uid, series_uid)
        cached: SeriesMetadata | None = self.cache.get(key)
        if cached is not None:
            self._ensure_final_state(key, cached)
            return cached
        owner = owner if owner is not None else asyncio.current_task()
        job = self.submit_metadata(study_uid, series_uid, purpose, owner)
        result: SeriesMetadata = await self.scheduler.wait(job, owner)
        return result

    def _ensure_final_state(self, key: NodeKey, meta: SeriesMetadata) -> None:
        if not self.store.get(key).done or self.store.get(key).state is not (
            LoadState.LOADED if meta.has_pixels else LoadState.NO_IMAGE
        ):
            state = LoadState.LOADED if meta.has_pixels else LoadState.NO_IMAGE
            self.store.set(
                key,
                NodeState(
                    state,
                    duration_ms=meta.ms,
                    bytes=meta.bytes,
                    detail=meta.strategy if meta.has_pixels else meta.reason,
                ),
            )

    def submit_metadata(self, study_uid: str, series_uid: str, purpose: str, owner: object) -> Job:
        """Queue the metadata fetch (disk cache first) without waiting; returns its job."""
        key = ("series", study_uid, series_uid)

        async def fetch(job: Job) -> SeriesMetadata:
            t0 = self.clock()
            instances, strategy = None, ""
            if self.disk_cache is not None:
                entry = await asyncio.to_thread(self.disk_cache.get, self.server_url, series_uid)
                if entry is not None:
                    try:
                        from tui.dicomweb.model import Instance

                        instances = [
                            Instance.from_json(raw, study_uid, series_uid)
                            for raw in entry["instances"]
                        ]
                        strategy = f"{entry.get('strategy', '?')} (disk)"
                    except DicomWebError as exc:
                        log.warning("disk cache entry for %s unusable: %s", series_uid, exc)
                        instances = None
            from_disk = instances is not None
            if instances is None:
                instances, strategy = await fetch_instances(
                    self.client,
                    study_uid,
                    series_uid,
                    mode=self.settings.metadata,
                    includefield=self.settings.includefield,
                    purpose=_client_purpose(purpose),
                    server_url=self.server_url,
                    memory=self.memory,
                )
            meta = SeriesMetadata.from_instances(
                study_uid,
                series_uid,
                instances,
                strategy,
                (self.clock() - t0) * 1000.0,
                job.bytes,
            )
            if not from_disk and self.disk_cache is not None and instances:
                disk = self.disk_cache
                raws = [i.raw for i in instances]
                await asyncio.to_thread(disk.put, self.server_url, series_uid, strategy, raws)
            self.cache.put(key, meta, _estimate_size(meta.instances))
            job.detail = strategy if meta.has_pixels else meta.reason
            if not meta.has_pixels:
                job.final_state = LoadState.NO_IMAGE
                self.store.set(
                    ("preview", study_uid, series_uid),
                    NodeState(LoadState.NO_IMAGE, detail=meta.reason),
                )
            return meta

        return self.scheduler.submit(
            key, _lane_for(purpose), fetch, owner=owner, series=(study_uid, series_uid), node=key
        )

    # -- frames --------------------------------------------------------------------------
    @staticmethod
    def frame_key(meta: SeriesMetadata, index: int) -> tuple[str, ...]:
        """The cache (and job) key of frame `index` of `meta`."""
        inst, number = meta.frame_ref(index)
        return ("frame", meta.study_uid, meta.series_uid, inst.sop_uid, str(number))

    def peek_frame(self, study_uid: str, series_uid: str, index: int) -> FrameResult | None:
        """The cached frame, if any, without fetching."""
        meta = self.peek_metadata(study_uid, series_uid)
        if meta is None or not 0 <= index < len(meta.frames):
            return None
        found: FrameResult | None = self.cache.peek(self.frame_key(meta, index))
        return found

    async def frame(
        self,
        meta: SeriesMetadata,
        index: int,
        purpose: str,
        owner: object | None,
        *,
        node: NodeKey | None = None,
    ) -> FrameResult:
        """Frame `index` from the cache or a (shared) job; `node`, if given, ends up loaded."""
        key = self.frame_key(meta, index)
        cached: FrameResult | None = self.cache.get(key)
        if cached is not None:
            self._mark_loaded(node, cached)
            return cached
        owner = owner if owner is not None else asyncio.current_task()
        job = self.submit_frame(meta, index, purpose, owner, node=node)
        result: FrameResult = await self.scheduler.wait(job, owner)
        self._mark_loaded(node, result)
        return result

    def _mark_loaded(self, node: NodeKey | None, result: FrameResult) -> None:
        # A cache hit (or a job another node started) leaves `node` untouched otherwise.
        if node is not None and self.store.get(node).state is not LoadState.LOADED:
            self.store.set(
                node, NodeState(LoadState.LOADED, duration_ms=result.ms, bytes=len(result.data))
            )

    def submit_frame(
        self,
        meta: SeriesMetadata,
        index: int,
        purpose: str,
        owner: object,
        *,
        node: NodeKey | None = None,
    ) -> Job:
        """Queue the fetch of frame `index` without waiting; returns its job."""
        key = self.frame_key(meta, index)
        inst, number = meta.frame_ref(index)

        async def fetch(job: Job) -> FrameResult:
            t0 = self.clock()
            parts = await self.client.frames(
                meta.study_uid,
                meta.series_uid,
                inst.sop_uid,
                [number],
                purpose=_client_purpose(purpose),
            )
            if not parts:
                raise MalformedAnswer("the frame answer had no part")
            part = parts[0]
            result = FrameResult(
                study_uid=meta.study_uid,
                series_uid=meta.series_uid,
                index=index,
                instance=inst,
                frame_number=number,
                data=part.data,
                transfer_syntax=part.transfer_syntax or inst.transfer_syntax_uid,
                ms=(self.clock() - t0) * 1000.0,
            )
            job.bytes = job.bytes or len(part.data)
            self.cache.put(key, result, len(part.data) + 512)
            return result

        return self.scheduler.submit(
            key,
            _lane_for(purpose),
            fetch,
            owner=owner,
            series=(meta.study_uid, meta.series_uid),
            node=node,
        )
