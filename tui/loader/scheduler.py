"""Priority lanes, a concurrency cap, in-flight de-duplication and cancellation.

Every network fetch of the loader is a `Job` identified by a resource key. Submitting a key
that is already queued or in flight returns the same job, so every waiter shares one request.
Jobs are started from three lanes in priority order (selected > list > prefetch) under a
total cap and a per-lane cap; a prefetch job never starts while a selected job is queued or
running, and when the total cap is full a queued selected job preempts a running prefetch job
(which is cancelled and put back at the head of its lane).

Interest in a job is tracked by *owners* (a waiting task, a selection, a prefetch policy
generation). When the last owner lets go, the job is dropped if queued (never sent) or
cancelled if in flight (the client records the request as "cancelled").
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tui.dicomweb.errors import DicomWebError

from .state import LoadState, NodeKey, NodeState, StateStore

log = logging.getLogger(__name__)

LANES: tuple[str, ...] = ("selected", "list", "prefetch")
DEFAULT_LANE_CAPS: Mapping[str, int] = {"selected": 4, "list": 2, "prefetch": 1}

#: The job whose factory is running in the current task (used to attribute request bytes).
current_job: contextvars.ContextVar[Job | None] = contextvars.ContextVar(
    "pacs_tui_current_job", default=None
)


class LoadCancelled(DicomWebError):
    """The load was cancelled because nobody wants it anymore (the user moved on)."""

    outcome = "cancelled"


@dataclass(eq=False)
class Job:
    """One fetch of one resource, shared by every owner that asked for it."""

    key: Hashable
    lane: str
    factory: Callable[[Job], Awaitable[Any]]
    series: tuple[str, str] | None = None
    nodes: list[NodeKey] = field(default_factory=list)
    future: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    owners: set[object] = field(default_factory=set)
    task: asyncio.Task[Any] | None = None
    running_lane: str | None = None
    preempted: bool = False
    started_count: int = 0
    # filled by the factory, reported in the node states
    bytes: int = 0
    detail: str | None = None
    final_state: LoadState = LoadState.LOADED
    error_detail: str | None = None

    @property
    def running(self) -> bool:
        """True while its task is in flight."""
        return self.task is not None and not self.task.done()


class Scheduler:
    """Runs jobs by lane priority under a total cap and per-lane caps."""

    def __init__(
        self,
        total_cap: int,
        lane_caps: Mapping[str, int] | None = None,
        store: StateStore | None = None,
    ) -> None:
        """`total_cap` bounds all in-flight jobs; `lane_caps` each lane's; `store` gets states."""
        self.total_cap = max(1, int(total_cap))
        caps = dict(DEFAULT_LANE_CAPS)
        caps.update(lane_caps or {})
        self.lane_caps = {lane: max(1, int(caps.get(lane, 1))) for lane in LANES}
        self.store = store if store is not None else StateStore()
        self._queues: dict[str, deque[Job]] = {lane: deque() for lane in LANES}
        self._jobs: dict[Hashable, Job] = {}
        self._running: dict[str, int] = dict.fromkeys(LANES, 0)
        self._closed = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.max_running = 0
        self.started = 0

    # -- introspection -------------------------------------------------------------------
    @property
    def running(self) -> int:
        """How many jobs are in flight now."""
        return sum(self._running.values())

    def running_in(self, lane: str) -> int:
        """How many jobs of `lane` are in flight now."""
        return self._running[lane]

    def queued(self, lane: str | None = None) -> int:
        """How many jobs wait in `lane` (or in all lanes)."""
        if lane is None:
            return sum(len(q) for q in self._queues.values())
        return len(self._queues[lane])

    def get(self, key: Hashable) -> Job | None:
        """The queued or in-flight job for `key`, if any."""
        return self._jobs.get(key)

    def jobs(self) -> list[Job]:
        """Every queued or in-flight job."""
        return list(self._jobs.values())

    # -- submitting and waiting ----------------------------------------------------------
    def submit(
        self,
        key: Hashable,
        lane: str,
        factory: Callable[[Job], Awaitable[Any]],
        *,
        owner: object,
        series: tuple[str, str] | None = None,
        node: NodeKey | None = None,
    ) -> Job:
        """Queue a job for `key` (or join the one queued/in flight) on behalf of `owner`.

        Joining a queued job from a higher-priority lane promotes it to that lane.
        """
        if self._closed:
            raise LoadCancelled("loader closed")
        if lane not in self._queues:
            raise ValueError(f"unknown lane {lane!r}")
        job = self._jobs.get(key)
        if job is None:
            job = Job(key=key, lane=lane, factory=factory, series=series)
            job.future.add_done_callback(_consume)
            self._jobs[key] = job
            self._queues[lane].append(job)
            if node is not None:
                job.nodes.append(node)
                self.store.queued(node)
        else:
            if node is not None and node not in job.nodes:
                job.nodes.append(node)
                if job.running:
                    self.store.loading(node)
                else:
                    self.store.queued(node)
            if not job.running and LANES.index(lane) < LANES.index(job.lane):
                self._move(job, lane)
        job.owners.add(owner)
        self._pump()
        return job

    async def wait(self, job: Job, owner: object) -> Any:
        """Await the job's result as `owner`; if this waiter is cancelled it lets go of the job
        (which is then cancelled if nobody else wants it)."""
        job.owners.add(owner)
        try:
            return await asyncio.shield(job.future)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                self.release(owner, [job])
                raise
            raise LoadCancelled("cancelled") from None
        finally:
            if job.future.done():
                job.owners.discard(owner)

    async def run(
        self,
        key: Hashable,
        lane: str,
        factory: Callable[[Job], Awaitable[Any]],
        *,
        owner: object | None = None,
        series: tuple[str, str] | None = None,
        node: NodeKey | None = None,
    ) -> Any:
        """Submit and wait (owner defaults to the current task)."""
        owner = owner if owner is not None else asyncio.current_task()
        job = self.submit(key, lane, factory, owner=owner, series=series, node=node)
        return await self.wait(job, owner)

    # -- letting go, promoting, cancelling -----------------------------------------------
    def release(self, owner: object, jobs: Iterable[Job] | None = None) -> None:
        """`owner` no longer wants these jobs (all of them by default); orphans are cancelled."""
        for job in list(jobs) if jobs is not None else list(self._jobs.values()):
            if owner in job.owners:
                job.owners.discard(owner)
                if not job.owners:
                    self.cancel(job)

    def cancel(self, job: Job) -> None:
        """Drop the job if queued (never sent) or cancel it if in flight."""
        if job.future.done():
            return
        if job.running:
            job.preempted = False
            if self._jobs.get(job.key) is job:
                # a new request for the same resource must not join a dying job
                del self._jobs[job.key]
            assert job.task is not None
            job.task.cancel()
            return
        for q in self._queues.values():
            if job in q:
                q.remove(job)
        self._jobs.pop(job.key, None)
        job.future.cancel()
        for node in job.nodes:
            # never started this time: back to what it was before it was queued
            self.store.set(
                node, NodeState(LoadState.CANCELLED) if job.started_count else NodeState()
            )

    def promote(self, predicate: Callable[[Job], bool], lane: str = "selected") -> int:
        """Move queued jobs matching `predicate` to `lane` (if it is higher); returns how many."""
        moved = 0
        for job in list(self._jobs.values()):
            if not job.running and predicate(job) and LANES.index(lane) < LANES.index(job.lane):
                self._move(job, lane)
                moved += 1
        if moved:
            self._pump()
        return moved

    async def aclose(self) -> None:
        """Cancel everything and wait for in-flight jobs to unwind."""
        self._closed = True
        for job in list(self._jobs.values()):
            self.cancel(job)
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- internals -----------------------------------------------------------------------
    def _move(self, job: Job, lane: str) -> None:
        self._queues[job.lane].remove(job)
        job.lane = lane
        self._queues[lane].append(job)

    def _can_start(self, lane: str) -> bool:
        if self._running[lane] >= self.lane_caps[lane]:
            return False
        return not (lane == "prefetch" and (self._queues["selected"] or self._running["selected"]))

    def _pump(self) -> None:
        """Start queued jobs while caps allow; preempt prefetch for a waiting selection."""
        while self.running < self.total_cap:
            for lane in LANES:
                if self._queues[lane] and self._can_start(lane):
                    self._start(self._queues[lane].popleft())
                    break
            else:
                break
        waiting = len(self._queues["selected"])
        free = self.lane_caps["selected"] - self._running["selected"]
        if waiting and free > 0 and self.running >= self.total_cap:
            victims = [
                j
                for j in self._jobs.values()
                if j.running and j.running_lane == "prefetch" and not j.preempted
            ]
            for job in victims[-min(waiting, free) :]:
                job.preempted = True
                assert job.task is not None
                job.task.cancel()

    def _start(self, job: Job) -> None:
        lane = job.lane
        job.running_lane = lane
        job.preempted = False
        job.started_count += 1
        self._running[lane] += 1
        self.started += 1
        self.max_running = max(self.max_running, self.running)
        for node in job.nodes:
            self.store.loading(node)
        job.task = asyncio.get_running_loop().create_task(self._run(job))
        self._tasks.add(job.task)
        job.task.add_done_callback(self._tasks.discard)
        job.task.add_done_callback(functools.partial(self._on_task_done, job))

    async def _run(self, job: Job) -> None:
        token = current_job.set(job)
        try:
            job.bytes, job.detail, job.error_detail = 0, None, None
            job.final_state = LoadState.LOADED
            result = await job.factory(job)
        except asyncio.CancelledError:
            raise
        except DicomWebError as exc:
            self._fail(job, exc)
        except Exception as exc:  # a bug or an unexpected answer: still a scoped failure
            log.exception("load of %s failed", job.key)
            self._fail(job, DicomWebError(f"{type(exc).__name__}: {exc}"))
        else:
            if not job.future.done():
                job.future.set_result(result)
            for node in job.nodes:
                self.store.finish(node, job.final_state, bytes=job.bytes, detail=job.detail)
        finally:
            current_job.reset(token)

    def _fail(self, job: Job, exc: DicomWebError) -> None:
        if not job.future.done():
            job.future.set_exception(exc)
        for node in job.nodes:
            self.store.finish(
                node,
                LoadState.FAILED,
                bytes=job.bytes or None,
                error=exc.message,
                detail=job.detail,
            )

    def _on_task_done(self, job: Job, _task: asyncio.Task[Any]) -> None:
        self._done(job)

    def _done(self, job: Job) -> None:
        lane = job.running_lane or job.lane
        self._running[lane] -= 1
        job.running_lane = None
        assert job.task is not None
        if job.task.cancelled():
            if job.preempted and job.owners and not self._closed and not job.future.done():
                job.preempted = False
                job.task = None
                self._queues[job.lane].appendleft(job)
                for node in job.nodes:
                    self.store.queued(node)
            else:
                superseded = self._jobs.get(job.key) not in (None, job)
                if self._jobs.get(job.key) is job:
                    del self._jobs[job.key]
                if not job.future.done():
                    job.future.cancel()
                if not superseded:
                    for node in job.nodes:
                        self.store.finish(node, LoadState.CANCELLED)
        elif self._jobs.get(job.key) is job:
            del self._jobs[job.key]
        if not self._closed:
            self._pump()


def _consume(fut: asyncio.Future[Any]) -> None:
    """Mark a job's exception as retrieved (detached prefetch jobs have no waiter)."""
    if not fut.cancelled():
        fut.exception()
