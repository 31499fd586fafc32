"""The on-demand loader: the selected series first, nothing unasked, nothing twice.

Plain asyncio on top of `DicomWebClient`; no Textual. It decides what is fetched, when and
in which order (see scheduler.py), caches what came (cache.py) and owns the load state of
every node (state.py), which subscribers (the app, triage, tests) follow.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tui.dicomweb.errors import DicomWebError

from .cache import DiskCache, MemoryCache
from .scheduler import LANES, Job, LoadCancelled, Scheduler, current_job
from .state import LoadState, NodeKey, NodeState, StateStore
from .strategies import (
    DEFAULT_MEMORY,
    StrategyMemory,
    fetch_instances,
    instance_has_pixels,
    no_pixel_reason,
    sort_instances,
)

if TYPE_CHECKING:
    from tui.config import Settings
    from tui.dicomweb.model import Instance, Patient, Series

log = logging.getLogger(__name__)

METADATA_KINDS = ("qido-instances", "wado-metadata")
READ_AHEAD = (1, -1, 2)  # frames fetched in the prefetch lane after the one shown


@dataclass(frozen=True)
class SeriesMetadata:
    """One series' instances, ordered for stepping, and how they were obtained."""

    study_uid: str
    series_uid: str
    instances: tuple[Instance, ...]
    frames: tuple[tuple[int, int], ...]
    strategy: str
    ms: float
    bytes: int
    has_pixels: bool
    reason: str | None = None

    @property
    def preview_index(self) -> int:
        """Index into `frames` of the frame to preview first: the middle slice."""
        return len(self.frames) // 2 if self.frames else 0

    def frame_ref(self, index: int) -> tuple[Instance, int]:
        """(instance, 1-based frame number) for an index into `frames`."""
        i, n = self.frames[index]
        return self.instances[i], n


@dataclass(frozen=True)
class FrameResult:
    """One frame's pixel data as the server sent it (decoding is the imaging layer's job)."""

    study_uid: str
    series_uid: str
    index: int
    instance: Instance
    frame_number: int
    data: bytes
    transfer_syntax: str | None
    ms: float


class _Selection:
    """The series under the cursor (an owner of the jobs it started)."""

    def __init__(self, study_uid: str, series_uid: str) -> None:
        self.study_uid = study_uid
        self.series_uid = series_uid
        self.task: asyncio.Task[None] | None = None
        self.started = False

    @property
    def target(self) -> tuple[str, str]:
        return (self.study_uid, self.series_uid)

    def __repr__(self) -> str:
        return f"<selection {self.series_uid}>"


class _Owner:
    """A named owner token (prefetch generation, retry)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<owner {self.name}>"


def _lane_for(purpose: str) -> str:
    return purpose if purpose in LANES else "selected"


def _estimate_size(instances: Sequence[Instance]) -> int:
    """Bytes a metadata entry takes in memory (about its DICOM JSON size)."""
    try:
        return sum(len(json.dumps(i.raw, separators=(",", ":"))) for i in instances) + 64
    except (TypeError, ValueError):
        return 2048 * max(1, len(instances))


class Loader:
    """Fetches lists, series metadata and frames on demand, with load states for every node."""

    def __init__(self, client: Any, settings: Settings, *, log: Any | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 disk_cache: DiskCache | None = None,
                 strategy_memory: StrategyMemory | None = None) -> None:
        """`client` is a DicomWebClient; `settings` gives caps, strategy, prefetch and caches;
        `log` (default: the client's `log`) is the RequestLog used to count bytes."""
        self.client = client
        self.settings = settings
        self.clock = clock
        self.server_url = settings.server.url
        self.store = StateStore(clock)
        self.scheduler = Scheduler(settings.server.concurrency, settings.lane_caps, self.store)
        self.cache = MemoryCache(int(settings.cache_mib) * 2**20)
        if disk_cache is None and settings.disk_cache:
            disk_cache = DiskCache(settings.disk_cache_dir)
        self.disk_cache = disk_cache
        self.memory = strategy_memory if strategy_memory is not None else DEFAULT_MEMORY
        self.request_log = log if log is not None else getattr(client, "log", None)
        self._unsub_log: Callable[[], None] | None = None
        if self.request_log is not None and hasattr(self.request_log, "subscribe"):
            self._unsub_log = self.request_log.subscribe(self._on_record)
        self._series_lists: dict[str, list[Series]] = {}
        self._selection: _Selection | None = None
        self._prefetch_owner = _Owner("prefetch")
        self._open_study: str | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._last_patients: tuple[Any, int, int] | None = None
        self._closed = False

    # -- states --------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[NodeKey, NodeState], None]) -> Callable[[], None]:
        """Call `callback(key, state)` on every load-state change; returns the unsubscribe."""
        return self.store.subscribe(callback)

    def state(self, key: NodeKey) -> NodeState:
        """The current state of one node (idle if never touched)."""
        return self.store.get(key)

    @property
    def selection(self) -> tuple[str, str] | None:
        """(study_uid, series_uid) of the selected series, if any."""
        return self._selection.target if self._selection else None

    @property
    def busy(self) -> bool:
        """True while anything is queued or in flight, or the selection is still loading."""
        sel = self._selection
        driving = sel is not None and sel.task is not None and not sel.task.done()
        return driving or bool(self.scheduler.jobs()) or any(
            not t.done() for t in self._background)

    def _on_record(self, record: Any) -> None:
        """Attribute each finished request's bytes to the job that made it."""
        job = current_job.get()
        if job is not None:
            job.bytes += int(getattr(record, "bytes", 0) or 0)

    # -- lists ---------------------------------------------------------------------------
    async def patients(self, query: Any | None = None, *, offset: int = 0,
                       limit: int = 50) -> list[Patient]:
        """Patients (studies grouped by PatientID) in the list lane; not cached (a refresh)."""
        self._last_patients = (query, offset, limit)

        async def fetch(job: Job) -> list[Patient]:
            found = list(await self.client.search_patients(query, limit=limit, offset=offset))
            job.detail = f"{len(found)} patients"
            return found

        key = ("patients", repr(query), offset, limit)
        result: list[Patient] = await self.scheduler.run(key, "list", fetch, node=("patients",))
        return result

    async def series_list(self, study_uid: str) -> list[Series]:
        """The series of a study (QIDO, list lane), cached for the life of the loader."""
        cached = self._series_lists.get(study_uid)
        if cached is not None:
            return cached

        async def fetch(job: Job) -> list[Series]:
            found = list(await self.client.search_series(study_uid, purpose="list"))
            job.detail = f"{len(found)} series"
            self._series_lists[study_uid] = found
            return found

        result: list[Series] = await self.scheduler.run(
            ("study", study_uid), "list", fetch, node=("study", study_uid))
        return result

    async def open_study(self, study_uid: str) -> list[Series]:
        """List a study's series and make it the open study (for the prefetch policy)."""
        self._open_study = study_uid
        series = await self.series_list(study_uid)
        if self._open_study == study_uid:
            self._apply_prefetch()
        return series

    # -- selection -----------------------------------------------------------------------
    def select_series(self, study_uid: str, series_uid: str, *, immediate: bool = False) -> None:
        """Select a series (non-blocking): after the dwell (or at once) its metadata loads in
        the selected lane, then its preview frame; what the previous selection started and no
        one else wants is dropped or cancelled."""
        if self._closed:
            return
        current = self._selection
        if current is not None and current.target == (study_uid, series_uid):
            finished = current.task is None or current.task.done()
            unfinished_state = self.store.get(("series", study_uid, series_uid)).state in (
                LoadState.FAILED, LoadState.CANCELLED, LoadState.IDLE)
            if immediate and (not current.started or (finished and unfinished_state)):
                if current.task is not None:
                    current.task.cancel()
                current.started = False
                current.task = self._spawn(self._drive(current, 0.0))
            return
        self._leave_selection()
        sel = _Selection(study_uid, series_uid)
        self._selection = sel
        target = sel.target
        self.scheduler.promote(lambda job: job.series == target, "selected")
        cached = self.cache.peek(("series", study_uid, series_uid)) is not None
        delay = 0.0 if immediate or cached else max(0, self.settings.dwell_ms) / 1000.0
        sel.task = self._spawn(self._drive(sel, delay))

    def clear_selection(self) -> None:
        """Nothing selected: what the selection started and no one else wants is cancelled."""
        self._leave_selection()
        self._apply_prefetch()

    def _leave_selection(self) -> None:
        sel = self._selection
        self._selection = None
        if sel is None:
            return
        if sel.task is not None:
            sel.task.cancel()
        self.scheduler.release(sel)

    async def _drive(self, sel: _Selection, delay: float) -> None:
        """Load the selected series: metadata, preview frame, read-ahead, then prefetch."""
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            if self._selection is not sel:
                return
            sel.started = True
            preview = ("preview", sel.study_uid, sel.series_uid)
            if not self.store.get(preview).done:
                self.store.queued(preview, detail="waiting for metadata")
            try:
                meta = await self._metadata(sel.study_uid, sel.series_uid, "selected", sel)
            except DicomWebError as exc:
                if not isinstance(exc, LoadCancelled):
                    self.store.finish(preview, LoadState.FAILED, error=exc.message,
                                      detail="metadata failed")
                raise
            except asyncio.CancelledError:
                if self.store.get(preview).state is LoadState.QUEUED:
                    self.store.set(preview, NodeState())
                raise
            if self._selection is not sel:
                return
            if not meta.has_pixels:
                self.store.set(preview, NodeState(LoadState.NO_IMAGE, detail=meta.reason))
            else:
                await self._frame(meta, meta.preview_index, "selected", sel, node=preview)
                if self._selection is not sel:
                    return
                self._read_ahead(meta, meta.preview_index, sel)
            self._apply_prefetch()
        except (DicomWebError, asyncio.CancelledError):
            pass  # the failed/cancelled state is already in the store
        except Exception:
            log.exception("selection load of %s failed", sel.series_uid)

    def _read_ahead(self, meta: SeriesMetadata, index: int, owner: object) -> None:
        for step in READ_AHEAD:
            i = index + step
            if 0 <= i < len(meta.frames) and self.cache.peek(self._frame_key(meta, i)) is None:
                self._submit_frame(meta, i, "prefetch", owner)

    # -- prefetch policy -----------------------------------------------------------------
    def _prefetch_targets(self) -> list[tuple[str, str]]:
        policy = self.settings.prefetch
        if policy == "study" and self._open_study:
            series = self._series_lists.get(self._open_study, [])
            return [(self._open_study, s.series_uid) for s in series]
        if policy == "adjacent" and self._selection is not None:
            study, uid = self._selection.target
            series = self._series_lists.get(study, [])
            uids = [s.series_uid for s in series]
            if uid in uids:
                k = uids.index(uid)
                return [(study, uids[j]) for j in (k + 1, k - 1) if 0 <= j < len(uids)]
        return []

    def _apply_prefetch(self) -> None:
        """Queue the policy's metadata prefetches; let go of those no longer wanted."""
        if self._closed:
            return
        old, new = self._prefetch_owner, _Owner("prefetch")
        self._prefetch_owner = new
        for study, uid in self._prefetch_targets():
            if self._selection is not None and self._selection.target == (study, uid):
                continue
            key = ("series", study, uid)
            if self.cache.peek(key) is not None or self.store.get(key).state in (
                    LoadState.FAILED, LoadState.NO_IMAGE):
                continue
            self._submit_metadata(study, uid, "prefetch", new)
        self.scheduler.release(old)

    # -- metadata ------------------------------------------------------------------------
    async def metadata(self, study_uid: str, series_uid: str, *,
                       purpose: str = "selected") -> SeriesMetadata:
        """One series' metadata (shared in flight, cached); raises DicomWebError on failure."""
        return await self._metadata(study_uid, series_uid, purpose, None)

    def peek_metadata(self, study_uid: str, series_uid: str) -> SeriesMetadata | None:
        """The cached metadata, if any, without fetching."""
        found: SeriesMetadata | None = self.cache.peek(("series", study_uid, series_uid))
        return found

    async def _metadata(self, study_uid: str, series_uid: str, purpose: str,
                        owner: object | None) -> SeriesMetadata:
        key = ("series", study_uid, series_uid)
        cached: SeriesMetadata | None = self.cache.get(key)
        if cached is not None:
            self._ensure_final_state(key, cached)
            return cached
        owner = owner if owner is not None else asyncio.current_task()
        job = self._submit_metadata(study_uid, series_uid, purpose, owner)
        result: SeriesMetadata = await self.scheduler.wait(job, owner)
        return result

    def _ensure_final_state(self, key: NodeKey, meta: SeriesMetadata) -> None:
        if not self.store.get(key).done or self.store.get(key).state is not (
                LoadState.LOADED if meta.has_pixels else LoadState.NO_IMAGE):
            state = LoadState.LOADED if meta.has_pixels else LoadState.NO_IMAGE
            self.store.set(key, NodeState(state, duration_ms=meta.ms, bytes=meta.bytes,
                                          detail=meta.strategy if meta.has_pixels
                                          else meta.reason))

    def _submit_metadata(self, study_uid: str, series_uid: str, purpose: str,
                         owner: object) -> Job:
        key = ("series", study_uid, series_uid)
        lane = _lane_for(purpose)
        client_purpose = purpose if purpose in ("selected", "prefetch", "triage") else "selected"

        async def fetch(job: Job) -> SeriesMetadata:
            t0 = self.clock()
            instances, strategy = None, ""
            if self.disk_cache is not None:
                entry = await asyncio.to_thread(self.disk_cache.get, self.server_url, series_uid)
                if entry is not None:
                    try:
                        from tui.dicomweb.model import Instance

                        instances = [Instance.from_json(raw, study_uid, series_uid)
                                     for raw in entry["instances"]]
                        strategy = f"{entry.get('strategy', '?')} (disk)"
                    except DicomWebError as exc:
                        log.warning("disk cache entry for %s unusable: %s", series_uid, exc)
                        instances = None
            from_disk = instances is not None
            if instances is None:
                instances, strategy = await fetch_instances(
                    self.client, study_uid, series_uid, mode=self.settings.metadata,
                    includefield=self.settings.includefield, purpose=client_purpose,
                    server_url=self.server_url, memory=self.memory)
            meta = self._build_metadata(study_uid, series_uid, instances, strategy,
                                        (self.clock() - t0) * 1000.0, job.bytes)
            if not from_disk and self.disk_cache is not None and instances:
                disk = self.disk_cache
                raws = [i.raw for i in instances]
                await asyncio.to_thread(disk.put, self.server_url, series_uid, strategy, raws)
            self.cache.put(key, meta, _estimate_size(meta.instances))
            job.detail = strategy if meta.has_pixels else meta.reason
            if not meta.has_pixels:
                job.final_state = LoadState.NO_IMAGE
                self.store.set(("preview", study_uid, series_uid),
                               NodeState(LoadState.NO_IMAGE, detail=meta.reason))
            return meta

        return self.scheduler.submit(key, lane, fetch, owner=owner,
                                     series=(study_uid, series_uid), node=key)

    def _build_metadata(self, study_uid: str, series_uid: str, instances: Sequence[Instance],
                        strategy: str, ms: float, nbytes: int) -> SeriesMetadata:
        ordered = tuple(sort_instances(instances))
        frames = tuple((i, n) for i, inst in enumerate(ordered) if instance_has_pixels(inst)
                       for n in range(1, max(1, inst.number_of_frames) + 1))
        has_pixels = bool(frames)
        return SeriesMetadata(study_uid=study_uid, series_uid=series_uid, instances=ordered,
                              frames=frames, strategy=strategy, ms=ms, bytes=nbytes,
                              has_pixels=has_pixels,
                              reason=None if has_pixels else no_pixel_reason(ordered))

    # -- frames --------------------------------------------------------------------------
    async def frame(self, study_uid: str, series_uid: str, index: int, *,
                    purpose: str = "selected") -> FrameResult:
        """Frame `index` (into SeriesMetadata.frames) of a series, cached; with the selected
        series it also reads ahead a couple of neighbours in the prefetch lane."""
        meta = await self.metadata(study_uid, series_uid, purpose=purpose)
        if not meta.has_pixels:
            raise DicomWebError(meta.reason or "no pixel data")
        if not 0 <= index < len(meta.frames):
            raise IndexError(f"frame index {index} out of range 0..{len(meta.frames) - 1}")
        node = ("preview", study_uid, series_uid) if index == meta.preview_index else None
        result = await self._frame(meta, index, purpose, None, node=node)
        sel = self._selection
        if sel is not None and sel.target == (study_uid, series_uid) and purpose == "selected":
            self._read_ahead(meta, index, sel)
        return result

    def peek_frame(self, study_uid: str, series_uid: str, index: int) -> FrameResult | None:
        """The cached frame, if any, without fetching."""
        meta = self.peek_metadata(study_uid, series_uid)
        if meta is None or not 0 <= index < len(meta.frames):
            return None
        found: FrameResult | None = self.cache.peek(self._frame_key(meta, index))
        return found

    @staticmethod
    def _frame_key(meta: SeriesMetadata, index: int) -> tuple[str, ...]:
        inst, number = meta.frame_ref(index)
        return ("frame", meta.study_uid, meta.series_uid, inst.sop_uid, str(number))

    async def _frame(self, meta: SeriesMetadata, index: int, purpose: str,
                     owner: object | None, *, node: NodeKey | None = None) -> FrameResult:
        key = self._frame_key(meta, index)
        cached: FrameResult | None = self.cache.get(key)
        if cached is not None:
            if node is not None and self.store.get(node).state is not LoadState.LOADED:
                self.store.set(node, NodeState(LoadState.LOADED, duration_ms=cached.ms,
                                               bytes=len(cached.data)))
            return cached
        owner = owner if owner is not None else asyncio.current_task()
        job = self._submit_frame(meta, index, purpose, owner, node=node)
        result: FrameResult = await self.scheduler.wait(job, owner)
        if node is not None and self.store.get(node).state is not LoadState.LOADED:
            self.store.set(node, NodeState(LoadState.LOADED, duration_ms=result.ms,
                                           bytes=len(result.data)))
        return result

    def _submit_frame(self, meta: SeriesMetadata, index: int, purpose: str, owner: object, *,
                      node: NodeKey | None = None) -> Job:
        key = self._frame_key(meta, index)
        inst, number = meta.frame_ref(index)
        client_purpose = purpose if purpose in ("selected", "prefetch", "triage") else "selected"

        async def fetch(job: Job) -> FrameResult:
            t0 = self.clock()
            parts = await self.client.frames(meta.study_uid, meta.series_uid, inst.sop_uid,
                                             [number], purpose=client_purpose)
            if not parts:
                from tui.dicomweb.errors import MalformedAnswer

                raise MalformedAnswer("the frame answer had no part")
            part = parts[0]
            result = FrameResult(study_uid=meta.study_uid, series_uid=meta.series_uid,
                                 index=index, instance=inst, frame_number=number,
                                 data=part.data,
                                 transfer_syntax=part.transfer_syntax or inst.transfer_syntax_uid,
                                 ms=(self.clock() - t0) * 1000.0)
            job.bytes = job.bytes or len(part.data)
            self.cache.put(key, result, len(part.data) + 512)
            return result

        return self.scheduler.submit(key, _lane_for(purpose), fetch, owner=owner,
                                     series=(meta.study_uid, meta.series_uid), node=node)

    # -- retry and shutdown --------------------------------------------------------------
    def retry(self, key: NodeKey) -> None:
        """Re-run a failed (or cancelled) node: series metadata, preview, study list, patients."""
        if self._closed or not key:
            return
        kind = key[0]
        if kind in ("series", "preview") and len(key) >= 3:
            study, uid = key[1], key[2]
            if kind == "series":
                self.cache.discard(key)
            sel = self._selection
            if sel is not None and sel.target == (study, uid):
                if sel.task is not None:
                    sel.task.cancel()
                sel.task = self._spawn(self._drive(sel, 0.0))
            elif kind == "series":
                self._spawn(self.metadata(study, uid))
            else:
                self._spawn(self._retry_preview(study, uid))
        elif kind == "study" and len(key) >= 2:
            self._series_lists.pop(key[1], None)
            self._spawn(self.series_list(key[1]))
        elif kind == "patients" and self._last_patients is not None:
            query, offset, limit = self._last_patients
            self._spawn(self.patients(query, offset=offset, limit=limit))

    async def _retry_preview(self, study_uid: str, series_uid: str) -> None:
        meta = await self.metadata(study_uid, series_uid)
        if meta.has_pixels:
            await self.frame(study_uid, series_uid, meta.preview_index)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(self._quiet(coro))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    @staticmethod
    async def _quiet(coro: Coroutine[Any, Any, Any]) -> None:
        with contextlib.suppress(DicomWebError, LoadCancelled):
            await coro

    async def aclose(self) -> None:
        """Cancel everything in flight and stop; the client is not closed (the caller owns it)."""
        self._closed = True
        self._leave_selection()
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await self.scheduler.aclose()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._unsub_log is not None:
            self._unsub_log()
            self._unsub_log = None

    close = aclose
