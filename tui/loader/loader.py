"""The on-demand loader: the selected series first, nothing unasked, nothing twice.

Plain asyncio on top of `DicomWebClient`; no Textual. It decides what is fetched, when and
in which order (see scheduler.py); fetcher.py gets a series' metadata and frames and caches
them (cache.py). It owns the load state of every node (state.py), which subscribers (the app,
triage, tests) follow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from tui.dicomweb.errors import DicomWebError

from .cache import DiskCache, MemoryCache
from .fetcher import SeriesFetcher
from .results import FrameResult, SeriesMetadata
from .scheduler import Job, LoadCancelled, Scheduler, current_job
from .state import LoadState, NodeKey, NodeState, StateStore
from .strategies import DEFAULT_MEMORY, StrategyMemory

if TYPE_CHECKING:
    from tui.config import Settings
    from tui.dicomweb.model import Patient, Series

log = logging.getLogger(__name__)

READ_AHEAD = (1, -1, 2)  # frames fetched in the prefetch lane after the one shown


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


class Loader:
    """Fetches lists, series metadata and frames on demand, with load states for every node."""

    def __init__(
        self,
        client: Any,
        settings: Settings,
        *,
        log: Any | None = None,
        clock: Callable[[], float] = time.monotonic,
        disk_cache: DiskCache | None = None,
        strategy_memory: StrategyMemory | None = None,
    ) -> None:
        """`client` is a DicomWebClient; `settings` gives caps, strategy, prefetch and caches;
        `log` (default: the client's `log`) is the RequestLog used to count bytes."""
        self.client = client
        self.settings = settings
        self.clock = clock
        self.store = StateStore(clock)
        self.scheduler = Scheduler(settings.server.concurrency, settings.lane_caps, self.store)
        self.cache = MemoryCache(int(settings.cache_mib) * 2**20)
        if disk_cache is None and settings.disk_cache:
            disk_cache = DiskCache(settings.disk_cache_dir)
        self.disk_cache = disk_cache
        self.memory = strategy_memory if strategy_memory is not None else DEFAULT_MEMORY
        self.fetcher = SeriesFetcher(
            client,
            settings,
            clock=clock,
            store=self.store,
            scheduler=self.scheduler,
            cache=self.cache,
            disk_cache=disk_cache,
            memory=self.memory,
        )
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
        return driving or bool(self.scheduler.jobs()) or any(not t.done() for t in self._background)

    def _on_record(self, record: Any) -> None:
        """Attribute each finished request's bytes to the job that made it."""
        job = current_job.get()
        if job is not None:
            job.bytes += int(getattr(record, "bytes", 0) or 0)

    # -- lists ---------------------------------------------------------------------------
    async def patients(
        self, query: Any | None = None, *, offset: int = 0, limit: int = 50
    ) -> list[Patient]:
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
            ("study", study_uid), "list", fetch, node=("study", study_uid)
        )
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
                LoadState.FAILED,
                LoadState.CANCELLED,
                LoadState.IDLE,
            )
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
                meta = await self.fetcher.metadata(sel.study_uid, sel.series_uid, "selected", sel)
            except DicomWebError as exc:
                if not isinstance(exc, LoadCancelled):
                    self.store.finish(
                        preview, LoadState.FAILED, error=exc.message, detail="metadata failed"
                    )
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
                await self.fetcher.frame(meta, meta.preview_index, "selected", sel, node=preview)
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
            if (
                0 <= i < len(meta.frames)
                and self.cache.peek(self.fetcher.frame_key(meta, i)) is None
            ):
                self.fetcher.submit_frame(meta, i, "prefetch", owner)

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
                LoadState.FAILED,
                LoadState.NO_IMAGE,
            ):
                continue
            self.fetcher.submit_metadata(study, uid, "prefetch", new)
        self.scheduler.release(old)

    # -- metadata ------------------------------------------------------------------------
    async def metadata(
        self, study_uid: str, series_uid: str, *, purpose: str = "selected"
    ) -> SeriesMetadata:
        """One series' metadata (shared in flight, cached); raises DicomWebError on failure."""
        return await self.fetcher.metadata(study_uid, series_uid, purpose, None)

    def peek_metadata(self, study_uid: str, series_uid: str) -> SeriesMetadata | None:
        """The cached metadata, if any, without fetching."""
        return self.fetcher.peek_metadata(study_uid, series_uid)

    # -- frames --------------------------------------------------------------------------
    async def frame(
        self, study_uid: str, series_uid: str, index: int, *, purpose: str = "selected"
    ) -> FrameResult:
        """Frame `index` (into SeriesMetadata.frames) of a series, cached; with the selected
        series it also reads ahead a couple of neighbours in the prefetch lane."""
        meta = await self.metadata(study_uid, series_uid, purpose=purpose)
        if not meta.has_pixels:
            raise DicomWebError(meta.reason or "no pixel data")
        if not 0 <= index < len(meta.frames):
            raise IndexError(f"frame index {index} out of range 0..{len(meta.frames) - 1}")
        node = ("preview", study_uid, series_uid) if index == meta.preview_index else None
        result = await self.fetcher.frame(meta, index, purpose, None, node=node)
        sel = self._selection
        if sel is not None and sel.target == (study_uid, series_uid) and purpose == "selected":
            self._read_ahead(meta, index, sel)
        return result

    def peek_frame(self, study_uid: str, series_uid: str, index: int) -> FrameResult | None:
        """The cached frame, if any, without fetching."""
        return self.fetcher.peek_frame(study_uid, series_uid, index)

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
