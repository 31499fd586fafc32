"""Loader unit tests with a small fake client: scheduling, sharing, caches, strategies."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from tests.helpers import wait_until
from tui.config import ServerSettings, Settings
from tui.dicomweb.client import FramePart
from tui.dicomweb.errors import ServerError
from tui.dicomweb.model import Instance, Series
from tui.dicomweb.requestlog import RequestLog
from tui.loader import DiskCache, Loader, LoadState, MemoryCache, NodeState
from tui.loader.scheduler import Scheduler
from tui.loader.strategies import StrategyMemory, sort_instances, sufficient

STUDY = "1.2.3"
CT = "1.2.840.10008.5.1.4.1.1.2"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


def _ds(
    series: str,
    n: int,
    *,
    rows: bool = True,
    sop_class: str = CT,
    z: float | None = None,
    iop: list[float] | None = None,
) -> dict[str, Any]:
    ds: dict[str, Any] = {
        "0020000D": {"vr": "UI", "Value": [STUDY]},
        "0020000E": {"vr": "UI", "Value": [series]},
        "00080018": {"vr": "UI", "Value": [f"{series}.{n}"]},
        "00080016": {"vr": "UI", "Value": [sop_class]},
        "00200013": {"vr": "IS", "Value": [n]},
    }
    if rows:
        ds["00280010"] = {"vr": "US", "Value": [4]}
        ds["00280011"] = {"vr": "US", "Value": [4]}
        ds["00280100"] = {"vr": "US", "Value": [16]}
        ds["00280004"] = {"vr": "CS", "Value": ["MONOCHROME2"]}
    if z is not None:
        ds["00200032"] = {"vr": "DS", "Value": [0.0, 0.0, z]}
        ds["00200037"] = {"vr": "DS", "Value": iop or [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]}
    return ds


class FakeClient:
    """Answers like DicomWebClient after `delay` seconds; records calls and concurrency."""

    def __init__(self, n_series: int = 5, delay: float = 0.05, instances: int = 5) -> None:
        self.log = RequestLog()
        self.delay = delay
        self.delays: dict[str, float] = {}
        self.calls: list[tuple[str, str]] = []
        self.cancelled: list[tuple[str, str]] = []
        self.active = 0
        self.peak = 0
        self.fail: set[str] = set()
        self.qido_rows = True
        self.series = [f"{STUDY}.{i}" for i in range(n_series)]
        self.instances = instances

    async def _call(self, kind: str, uid: str) -> None:
        self.calls.append((kind, uid))
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(self.delays.get(uid, self.delay))
        except asyncio.CancelledError:
            self.cancelled.append((kind, uid))
            raise
        finally:
            self.active -= 1
        if uid in self.fail:
            raise ServerError("HTTP 500: boom", status=500)

    def count(self, kind: str, uid: str | None = None) -> int:
        return sum(1 for k, u in self.calls if k == kind and (uid is None or u == uid))

    async def search_series(self, study_uid: str, *, purpose: str = "list") -> list[Series]:
        await self._call("series", study_uid)
        return [
            Series.from_json(
                {
                    "0020000D": {"vr": "UI", "Value": [study_uid]},
                    "0020000E": {"vr": "UI", "Value": [uid]},
                }
            )
            for uid in self.series
        ]

    async def search_instances(
        self, study_uid: str, series_uid: str, includefield=(), *, purpose: str = "selected"
    ) -> list[Instance]:
        await self._call("qido", series_uid)
        return [
            Instance.from_json(_ds(series_uid, n, rows=self.qido_rows, z=-n * 2.0))
            for n in range(1, self.instances + 1)
        ]

    async def series_metadata(
        self, study_uid: str, series_uid: str, *, purpose: str = "selected"
    ) -> list[Instance]:
        await self._call("wado", series_uid)
        return [
            Instance.from_json(_ds(series_uid, n, z=-n * 2.0)) for n in range(1, self.instances + 1)
        ]

    async def frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frames, *, purpose: str = "selected"
    ) -> list[FramePart]:
        await self._call("frame", series_uid)
        return [FramePart({}, "application/octet-stream", None, b"\0" * 32)]


def make(client: FakeClient, **kw: Any) -> Loader:
    server = ServerSettings(url="http://fake/dicom-web", concurrency=kw.pop("concurrency", 6))
    return Loader(client, Settings(server=server, **kw), strategy_memory=StrategyMemory())


async def test_shared_in_flight_and_shielded_waiters() -> None:
    client = FakeClient(delay=0.1)
    loader = make(client)
    uid = client.series[0]
    a = asyncio.create_task(loader.metadata(STUDY, uid))
    b = asyncio.create_task(loader.metadata(STUDY, uid))
    await asyncio.sleep(0.02)
    a.cancel()  # one waiter leaving does not cancel the shared fetch
    meta = await b
    assert client.count("qido") == 1 and not client.cancelled
    assert len(meta.instances) == 5
    await loader.aclose()


async def test_last_waiter_leaving_cancels_the_fetch() -> None:
    client = FakeClient(delay=0.5)
    loader = make(client)
    uid = client.series[0]
    tasks = [asyncio.create_task(loader.metadata(STUDY, uid)) for _ in range(2)]
    await wait_until(lambda: client.active == 1)
    for t in tasks:
        t.cancel()
    await wait_until(lambda: client.cancelled == [("qido", uid)], 1)
    await wait_until(lambda: loader.state(("series", STUDY, uid)).state is LoadState.CANCELLED)
    assert not loader.scheduler.jobs()
    await loader.aclose()


async def test_dwell_and_drop_of_passed_over_selection() -> None:
    client = FakeClient(delay=0.02)
    loader = make(client, dwell_ms=100)
    for uid in client.series:
        loader.select_series(STUDY, uid)
        await asyncio.sleep(0.01)
    last = client.series[-1]
    await wait_until(lambda: loader.state(("preview", STUDY, last)).state is LoadState.LOADED)
    assert [u for k, u in client.calls if k == "qido"] == [last]
    await loader.aclose()


async def test_leaving_cancels_in_flight_and_never_exceeds_cap() -> None:
    client = FakeClient(n_series=8, delay=0.05)
    loader = make(client, concurrency=2, prefetch="adjacent")
    await loader.open_study(STUDY)
    for i in range(50):
        loader.select_series(STUDY, client.series[(i * 3) % 8], immediate=i % 2 == 0)
        await asyncio.sleep(0.003 * (i % 4))
        assert loader.scheduler.running <= 2 and client.active <= 2
    final = client.series[(49 * 3) % 8]
    await wait_until(lambda: loader.state(("preview", STUDY, final)).state is LoadState.LOADED)
    await wait_until(lambda: not loader.busy, 3)
    assert client.peak <= 2 and loader.scheduler.max_running <= 2
    assert client.cancelled  # passed-over requests in flight were cancelled
    await loader.aclose()


async def test_selection_preempts_prefetch_when_cap_is_full() -> None:
    client = FakeClient(n_series=4, delay=0.3)
    loader = make(client, concurrency=1, prefetch="study")
    await loader.open_study(STUDY)
    await wait_until(lambda: client.active == 1)  # prefetch of series 0 in flight
    target = client.series[3]
    t0 = time.monotonic()
    loader.select_series(STUDY, target, immediate=True)
    await wait_until(lambda: loader.state(("series", STUDY, target)).state is LoadState.LOADED)
    assert time.monotonic() - t0 < 0.45
    assert ("qido", client.series[0]) in client.cancelled
    # the preempted prefetch is put back and completes afterwards
    await wait_until(lambda: all(loader.peek_metadata(STUDY, u) for u in client.series), 5)
    assert client.peak == 1
    await loader.aclose()


async def test_queued_prefetch_is_promoted_when_selected() -> None:
    client = FakeClient(n_series=4, delay=0.2)
    loader = make(client, prefetch="study")
    await loader.open_study(STUDY)
    target = client.series[3]
    await wait_until(lambda: loader.state(("series", STUDY, target)).state is LoadState.QUEUED)
    job = loader.scheduler.get(("series", STUDY, target))
    assert job is not None and job.lane == "prefetch"
    loader.select_series(STUDY, target, immediate=True)
    assert job.lane == "selected"
    await wait_until(lambda: loader.state(("preview", STUDY, target)).state is LoadState.LOADED)
    assert client.count("qido", target) == 1
    await loader.aclose()


async def test_failure_retry_and_subscribers() -> None:
    client = FakeClient(delay=0.01)
    loader = make(client)
    seen: list[tuple[tuple[str, ...], LoadState]] = []
    unsubscribe = loader.subscribe(lambda key, st: seen.append((key, st.state)))
    uid = client.series[1]
    client.fail.add(uid)
    key = ("series", STUDY, uid)
    loader.select_series(STUDY, uid, immediate=True)
    await wait_until(lambda: loader.state(("preview", STUDY, uid)).state is LoadState.FAILED)
    assert loader.state(key).error == "HTTP 500: boom"
    assert loader.state(key).label() == "failed (HTTP 500)"
    client.fail.clear()
    loader.retry(key)
    await wait_until(lambda: loader.state(("preview", STUDY, uid)).state is LoadState.LOADED)
    states = [s for k, s in seen if k == key]
    assert states == [
        LoadState.QUEUED,
        LoadState.LOADING,
        LoadState.FAILED,
        LoadState.QUEUED,
        LoadState.LOADING,
        LoadState.LOADED,
    ]
    unsubscribe()
    await loader.aclose()


async def test_auto_falls_back_to_wado_and_remembers() -> None:
    client = FakeClient(delay=0.0)
    client.qido_rows = False
    loader = make(client)
    meta = await loader.metadata(STUDY, client.series[0])
    assert meta.strategy == "wado" and client.count("qido") == 1 and client.count("wado") == 1
    meta = await loader.metadata(STUDY, client.series[1])
    assert meta.strategy == "wado" and client.count("qido") == 1  # remembered per server
    await loader.aclose()


async def test_no_pixel_series_is_no_image_never_a_spinner() -> None:
    client = FakeClient(delay=0.0)

    async def sr(study_uid: str, series_uid: str, includefield=(), *, purpose: str = "") -> list:
        return [Instance.from_json(_ds(series_uid, 1, rows=False, sop_class=BASIC_TEXT_SR))]

    client.search_instances = sr  # type: ignore[method-assign]
    loader = make(client)
    uid = client.series[0]
    loader.select_series(STUDY, uid, immediate=True)
    await wait_until(lambda: loader.state(("preview", STUDY, uid)).state is LoadState.NO_IMAGE)
    st = loader.state(("series", STUDY, uid))
    assert st.state is LoadState.NO_IMAGE and st.detail == "no pixel data (SR)"
    assert client.count("wado") == 0 and client.count("frame") == 0
    await loader.aclose()


def test_sort_along_normal_and_by_number() -> None:
    iop = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]  # sagittal: normal along -x... positions vary in x
    insts = []
    for n, x in ((1, 5.0), (2, -5.0), (3, 0.0)):
        ds = _ds("9", n, z=0.0, iop=iop)
        ds["00200032"] = {"vr": "DS", "Value": [x, 0.0, 0.0]}
        insts.append(Instance.from_json(ds))
    ordered = [i.number for i in sort_instances(insts)]
    assert ordered in ([2, 3, 1], [1, 3, 2]) and ordered[1] == 3
    by_number = [Instance.from_json(_ds("9", n)) for n in (3, 1, 2)]
    assert [i.number for i in sort_instances(by_number)] == [1, 2, 3]
    assert sufficient(by_number)
    assert not sufficient([Instance.from_json(_ds("9", 1, rows=False))])


def test_node_state_labels() -> None:
    assert NodeState().label() == ""
    assert NodeState(LoadState.QUEUED).label() == "queued"
    assert NodeState(LoadState.LOADING, started_at=10.0).label(now=11.24) == "loading 1.2 s"
    assert NodeState(LoadState.LOADED, duration_ms=148.2).label() == "148 ms"
    assert NodeState(LoadState.LOADED, duration_ms=2500).label() == "2.5 s"
    assert NodeState(LoadState.FAILED, error="HTTP 500: x").label() == "failed (HTTP 500)"
    assert NodeState(LoadState.NO_IMAGE).label() == "no image"
    assert NodeState(LoadState.CANCELLED).label() == "cancelled"


def test_memory_cache_lru_budget() -> None:
    cache = MemoryCache(100)
    for i in range(5):
        cache.put(i, str(i), 30)
        assert cache.size <= 100
    assert cache.keys() == [2, 3, 4]
    cache.get(2)
    cache.put(5, "5", 30)
    assert cache.keys() == [4, 2, 5] or cache.keys() == [2, 5] or 3 not in cache
    assert 3 not in cache and 2 in cache
    assert not cache.put("big", "x", 101) and "big" not in cache


def test_disk_cache_atomic_and_tolerant(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path, max_bytes=10_000)
    assert disk.get("http://a", "1.2") is None
    disk.put("http://a", "1.2", "qido", [{"k": 1}])
    assert disk.get("http://a", "1.2")["instances"] == [{"k": 1}]  # type: ignore[index]
    assert disk.get("http://b", "1.2") is None  # keyed by server too
    path = disk.path_for("http://a", "1.2")
    assert "1.2" not in path.name and not list(tmp_path.glob(".tmp-*"))
    for bad in (b"", b'{"format": 1, "url"', b"\xff\xfe garbage", json.dumps([1]).encode()):
        path.write_bytes(bad)
        assert disk.get("http://a", "1.2") is None
    for i in range(40):  # bounded
        disk.put("http://a", f"9.{i}", "qido", [{"pad": "x" * 500}])
    assert sum(p.stat().st_size for p in tmp_path.glob("*.json")) <= 10_000


async def test_scheduler_lane_priority() -> None:
    sched = Scheduler(1, {"selected": 1, "list": 1, "prefetch": 1})
    order: list[str] = []

    def job(name: str):
        async def run(_job: Any) -> str:
            order.append(name)
            await asyncio.sleep(0.01)
            return name

        return run

    owner = object()
    first = sched.submit("p0", "prefetch", job("p0"), owner=owner)
    jobs = [
        sched.submit("p1", "prefetch", job("p1"), owner=owner),
        sched.submit("l1", "list", job("l1"), owner=owner),
        sched.submit("s1", "selected", job("s1"), owner=owner),
    ]
    await asyncio.gather(*(sched.wait(j, owner) for j in [first, *jobs]), return_exceptions=True)
    # p0 was preempted by s1 (cap full) before it ran, and put back at the head of its lane
    assert order == ["s1", "l1", "p0", "p1"] and sched.max_running == 1
