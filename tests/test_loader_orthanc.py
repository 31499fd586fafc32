"""Loader acceptance tests against the real Orthanc, with the latency proxy where needed."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import via, wait_until
from tests.latency_proxy import METADATA_PATTERN, Rule
from tui import sample
from tui.config import ServerSettings, Settings
from tui.dicomweb.client import DicomWebClient
from tui.dicomweb.requestlog import RequestLog
from tui.loader import Loader, LoadState
from tui.loader.cache import DiskCache
from tui.loader.strategies import StrategyMemory

pytestmark = pytest.mark.orthanc

CT = sample.STUDIES["ct"].study_uid
CT_SERIES = [s.series_uid for s in sample.SERIES.values() if s.study_key == "ct"]
ALL_SERIES = [(s.study.study_uid, s.series_uid) for s in sample.SERIES.values()]
SR = sample.SERIES["sr"]
METADATA_KINDS = ("qido-instances", "wado-metadata")


class Rig:
    """A client + request log + loader, closed by the fixture."""

    def __init__(self) -> None:
        self.items: list[tuple[DicomWebClient, Loader]] = []

    def make(self, server: ServerSettings, **overrides: Any) -> tuple[Loader, RequestLog]:
        """A loader on `server` with Settings overrides; its own strategy memory."""
        log = RequestLog(maxlen=10000)
        client = DicomWebClient(server, log)
        settings = Settings(server=server, **overrides)
        loader = Loader(client, settings, strategy_memory=StrategyMemory())
        self.items.append((client, loader))
        return loader, log

    async def close(self) -> None:
        for client, loader in self.items:
            await asyncio.wait_for(loader.aclose(), 10)
            await asyncio.wait_for(client.aclose(), 10)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = Rig()
    yield r
    await r.close()


def meta_records(log: RequestLog, series_uid: str | None = None) -> list[Any]:
    return [
        r
        for r in log.records()
        if r.kind in METADATA_KINDS and (series_uid is None or r.series_uid == series_uid)
    ]


def loaded(loader: Loader, kind: str, study: str, series: str) -> bool:
    return loader.state((kind, study, series)).state is LoadState.LOADED


async def test_open_study_fetches_nothing_until_selected(rig: Rig, server_settings) -> None:
    loader, log = rig.make(server_settings)
    series = await loader.open_study(CT)
    assert [s.series_uid for s in series] and len(series) == len(CT_SERIES)
    await asyncio.sleep(0.3)  # anything a prefetch would have sent by now
    kinds = {r.kind for r in log.records()}
    assert kinds == {"qido-series"}, kinds
    assert loader.state(("study", CT)).state is LoadState.LOADED

    k = CT_SERIES[2]
    loader.select_series(CT, k, immediate=True)
    await wait_until(lambda: loaded(loader, "preview", CT, k), 10, "preview")
    metas = meta_records(log)
    assert len(metas) == 1 and metas[0].series_uid == k and metas[0].kind == "qido-instances"
    assert all(r.series_uid == k for r in log.records() if r.kind == "wado-frames")
    meta = loader.peek_metadata(CT, k)
    assert meta is not None and meta.strategy == "qido" and meta.has_pixels
    st = loader.state(("series", CT, k))
    assert st.detail == "qido" and st.bytes and st.duration_ms is not None
    assert st.label().endswith("ms") or st.label().endswith(" s")


async def test_dwell_skips_series_passed_over(rig: Rig, server_settings) -> None:
    loader, log = rig.make(server_settings)
    await loader.open_study(CT)
    for uid in CT_SERIES:  # cursor moves down faster than the dwell
        loader.select_series(CT, uid)
        await asyncio.sleep(0.02)
    last = CT_SERIES[-1]
    await wait_until(lambda: loaded(loader, "series", CT, last), 10)
    assert [r.series_uid for r in meta_records(log)] == [last]


@pytest.mark.parametrize("prefetch", ["none", "study"])
async def test_last_series_first_behind_slow_metadata(
    rig: Rig, server_settings, proxy, prefetch: str
) -> None:
    proxy.rules.append(Rule(METADATA_PATTERN, delay=1.0))
    loader, log = rig.make(via(proxy, server_settings), prefetch=prefetch)
    await loader.open_study(CT)
    last = CT_SERIES[-1]
    t0 = time.monotonic()
    loader.select_series(CT, last, immediate=True)
    await wait_until(lambda: loaded(loader, "series", CT, last), 5, "metadata")
    took = time.monotonic() - t0
    assert 1.0 <= took < 1.6, (
        took,
        [r.to_json() for r in log.records()],
        [(x.target, x.started, x.ended) for x in proxy.served],
    )
    assert len(meta_records(log, last)) == 1
    if prefetch == "none":
        assert len(meta_records(log)) == 1


async def test_selected_before_metadata_arrives_gets_it(rig: Rig, server_settings, proxy) -> None:
    proxy.rules.append(Rule(METADATA_PATTERN, delay=0.4))
    loader, log = rig.make(via(proxy, server_settings))
    uid = CT_SERIES[1]
    waiter = asyncio.create_task(loader.metadata(CT, uid, purpose="prefetch"))
    await wait_until(lambda: loader.state(("series", CT, uid)).state is LoadState.LOADING)
    loader.select_series(CT, uid, immediate=True)  # joins the request in flight
    await wait_until(lambda: loaded(loader, "preview", CT, uid), 5, "preview")
    meta = await waiter
    assert meta is loader.peek_metadata(CT, uid)
    assert len(meta_records(log, uid)) == 1


async def test_failed_request_then_retry(rig: Rig, server_settings, proxy) -> None:
    rule = Rule(METADATA_PATTERN, fail_status=500)
    proxy.rules.append(rule)
    loader, log = rig.make(via(proxy, server_settings))
    uid = CT_SERIES[0]
    loader.select_series(CT, uid, immediate=True)
    key = ("series", CT, uid)
    await wait_until(lambda: loader.state(key).state is LoadState.FAILED, 5, "failed")
    st = loader.state(key)
    assert st.error and "500" in st.error
    assert st.label().startswith("failed (")
    preview = ("preview", CT, uid)
    await wait_until(lambda: loader.state(preview).state is LoadState.FAILED, 1, "preview")
    assert "500" in (loader.state(preview).error or "")
    assert [r.status for r in meta_records(log, uid)] == [500]

    rule.fail_status = None
    loader.retry(key)
    await wait_until(lambda: loaded(loader, "preview", CT, uid), 5, "preview after retry")
    assert loader.state(key).state is LoadState.LOADED and loader.state(key).error is None


async def test_fifty_rapid_selection_changes_respect_the_cap(
    rig: Rig, server_settings, proxy
) -> None:
    proxy.rules.append(Rule(METADATA_PATTERN, delay=0.15))
    proxy.rules.append(Rule(r"/frames/", delay=0.05))
    cap = 3
    server = via(proxy, server_settings, concurrency=cap)
    loader, log = rig.make(server, prefetch="adjacent")
    peak = 0

    def started(_info: Any) -> None:
        nonlocal peak
        peak = max(peak, log.in_flight)

    log.subscribe_started(started)
    for study in {s for s, _ in ALL_SERIES}:
        await loader.open_study(study)
    listed = len(log.records())
    targets = [ALL_SERIES[(i * 5) % len(ALL_SERIES)] for i in range(50)]
    for i, (study, uid) in enumerate(targets):
        loader.select_series(study, uid, immediate=(i % 3 == 0))
        await asyncio.sleep(0.01 if i % 2 else 0.04)
        assert loader.scheduler.running <= cap
    final = targets[-1]
    await wait_until(lambda: loader.state(("preview", *final)).done, 10, "final preview")
    assert loader.state(("preview", *final)).state in (LoadState.LOADED, LoadState.NO_IMAGE)
    await wait_until(lambda: not loader.busy, 10, "quiet")
    assert peak <= cap and loader.scheduler.max_running <= cap and proxy.max_in_flight <= cap
    sent = log.records()[listed:]
    outcomes = {r.outcome for r in sent}
    assert outcomes <= {"ok", "cancelled"}, outcomes
    assert "cancelled" in outcomes  # passed-over requests in flight were cancelled
    assert len(meta_records(log)) < 50  # most passed-over series were never sent


async def test_revisit_issues_no_request(rig: Rig, server_settings) -> None:
    loader, log = rig.make(server_settings)
    a, b = CT_SERIES[1], CT_SERIES[4]
    for uid in (a, b):
        loader.select_series(CT, uid, immediate=True)
        await wait_until(functools.partial(loaded, loader, "preview", CT, uid), 10)
        await wait_until(lambda: not loader.busy, 10, "read-ahead done")
    before = len(log.records())
    assert [r.kind for r in log.records()].count("wado-frames") == 2 * 4  # preview + 3 ahead
    loader.select_series(CT, a)
    await asyncio.sleep(0.05)
    assert loaded(loader, "preview", CT, a)
    frame = await loader.frame(CT, a, loader.peek_metadata(CT, a).preview_index)  # type: ignore[union-attr]
    assert frame.data
    await asyncio.sleep(0.3)
    assert [(r.kind, r.url) for r in log.records()[before:]] == []


async def test_cache_stays_within_budget(rig: Rig, server_settings) -> None:
    loader, log = rig.make(server_settings, cache_mib=1)  # two 512x512x16-bit frames
    uid = CT_SERIES[1]
    meta = await loader.metadata(CT, uid)
    for i in range(6):
        await loader.frame(CT, uid, i, purpose="prefetch")
        assert loader.cache.size <= loader.cache.budget
    assert loader.cache.evictions > 0
    n = len(log.records())
    await loader.frame(CT, uid, 0, purpose="prefetch")  # evicted: fetched again
    assert len(log.records()) == n + 1
    assert meta.frames and loader.cache.size <= 2**20


async def test_series_without_pixels_is_no_image(rig: Rig, server_settings) -> None:
    loader, log = rig.make(server_settings)
    study = SR.study.study_uid
    loader.select_series(study, SR.series_uid, immediate=True)
    key = ("series", study, SR.series_uid)
    await wait_until(lambda: loader.state(key).done, 5)
    assert loader.state(key).state is LoadState.NO_IMAGE
    assert "SR" in (loader.state(key).detail or "")
    assert loader.state(("preview", study, SR.series_uid)).state is LoadState.NO_IMAGE
    assert loader.state(("preview", study, SR.series_uid)).label() == "no image"
    assert not [r for r in log.records() if r.kind == "wado-frames"]
    meta = loader.peek_metadata(study, SR.series_uid)
    assert meta is not None and not meta.has_pixels and meta.strategy == "qido"


async def test_ordering_and_multiframe(rig: Rig, server_settings) -> None:
    loader, _ = rig.make(server_settings)
    spec = sample.SERIES["ct20"]
    meta = await loader.metadata(CT, spec.series_uid)
    z = [inst.image_position[2] for inst in meta.instances]  # type: ignore[index]
    assert z == sorted(z) and len(z) == spec.instances
    mf = sample.SERIES["mf24"]
    meta = await loader.metadata(mf.study.study_uid, mf.series_uid)
    assert len(meta.frames) == 24 and meta.preview_index == 12
    result = await loader.frame(mf.study.study_uid, mf.series_uid, 3)
    assert result.frame_number == 4 and len(result.data) == 256 * 256 * 2


async def test_wado_strategy(rig: Rig, server_settings) -> None:
    loader, log = rig.make(server_settings, metadata="wado")
    meta = await loader.metadata(CT, CT_SERIES[0])
    assert meta.strategy == "wado" and [r.kind for r in log.records()] == ["wado-metadata"]


async def test_disk_cache_and_corrupt_file(rig: Rig, server_settings, tmp_path: Path) -> None:
    opts: dict[str, Any] = {"disk_cache": True, "disk_cache_dir": str(tmp_path)}
    uid = CT_SERIES[1]
    first, log1 = rig.make(server_settings, **opts)
    await first.metadata(CT, uid)
    assert len(meta_records(log1)) == 1

    second, log2 = rig.make(server_settings, **opts)
    meta = await second.metadata(CT, uid)
    assert not log2.records() and "disk" in meta.strategy and len(meta.instances) == 20

    path = DiskCache(str(tmp_path)).path_for(server_settings.url, uid)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # half-written
    third, log3 = rig.make(server_settings, **opts)
    meta = await third.metadata(CT, uid)
    assert len(meta_records(log3)) == 1 and meta.strategy == "qido"
    assert third.state(("series", CT, uid)).state is LoadState.LOADED
