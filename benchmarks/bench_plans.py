"""Replay three request plans against one Orthanc behind a storage-bound latency proxy.

The proxy makes every metadata or instance query take 1 s more and serves at most 2 of them
at a time (like a PACS bound by its storage). A patient with 2 studies and 8 series; the
user wants the last series. After the list queries (QIDO studies + series, not counted),
at t=0 each plan starts:

- Stone-like: one low-priority lane, one request at a time: per series `instances?limit=1`
  and a series `/rendered` thumbnail, then every series' `/metadata`; the wanted series is
  clicked at t=0, so its `/metadata` goes to the high lane (1 at a time), then its frame.
- OHIF-like: the first series' `/metadata`, then every other series' `/metadata` at once
  (no cap); the wanted series' frame once its metadata is in.
- pacs-tui: the Loader with default settings; `select_series(wanted, immediate=True)`.

Reported per plan: requests sent and bytes received before the wanted series' first frame
is ready, and the time to that frame; plus the baseline (one metadata query and one frame
request, back to back, through the same proxy). Run: `.venv/bin/python benchmarks/bench_plans.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.latency_proxy import METADATA_PATTERN, LatencyProxy, Rule  # noqa: E402
from tui import sample  # noqa: E402
from tui.config import DEFAULT_INCLUDEFIELD, ServerSettings, Settings  # noqa: E402
from tui.dicomweb.client import DicomWebClient  # noqa: E402
from tui.dicomweb.requestlog import RequestLog  # noqa: E402
from tui.loader import Loader, LoadState  # noqa: E402
from tui.orthanc import PrivateOrthanc  # noqa: E402

PATIENT = "PTUI001"
FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
DELAY = 1.0
BACKEND_SLOTS = 2


@dataclass
class Result:
    """One plan's numbers."""

    plan: str
    requests: int = 0
    bytes: int = 0
    seconds: float = 0.0
    notes: str = ""


@dataclass
class Meter:
    """Counts requests sent and bytes received by a raw-httpx plan until `stop()`."""

    t0: float = field(default_factory=time.monotonic)
    sent: int = 0
    received: int = 0
    stopped: bool = False

    def stop(self) -> tuple[int, int, float]:
        self.stopped = True
        return self.sent, self.received, time.monotonic() - self.t0


class Raw:
    """A raw httpx client through the proxy, metering what it sends and receives."""

    def __init__(self, base: str, auth: tuple[str, str]) -> None:
        self.base = base
        self.http = httpx.AsyncClient(
            auth=auth, timeout=60.0, limits=httpx.Limits(max_connections=100)
        )
        self.meter = Meter()

    async def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        counted = not self.meter.stopped
        if counted:
            self.meter.sent += 1
        resp = await self.http.get(self.base + path, headers=headers)
        resp.raise_for_status()
        if not self.meter.stopped:
            self.meter.received += resp.num_bytes_downloaded
        return resp

    async def aclose(self) -> None:
        await self.http.aclose()


def _middle_instance(datasets: list[dict[str, Any]]) -> str:
    def number(ds: dict[str, Any]) -> int:
        return int((ds.get("00200013", {}).get("Value") or [0])[0])

    ordered = sorted(datasets, key=number)
    return str(ordered[len(ordered) // 2]["00080018"]["Value"][0])


async def _frame(raw: Raw, study: str, series: str, sop: str) -> None:
    await raw.get(
        f"/studies/{study}/series/{series}/instances/{sop}/frames/1",
        {"Accept": FRAME_ACCEPT, "Accept-Encoding": "identity"},
    )


async def list_queries(raw: Raw) -> list[tuple[str, str]]:
    """QIDO studies of the patient, then each study's series; (study, series) in order."""
    studies = (await raw.get(f"/studies?PatientID={PATIENT}&includefield=00081030")).json()
    studies.sort(key=lambda d: (d.get("00080020", {}).get("Value") or [""])[0])
    pairs = []
    for st in studies:
        uid = st["0020000D"]["Value"][0]
        series = (await raw.get(f"/studies/{uid}/series")).json()
        series.sort(key=lambda d: int((d.get("00200011", {}).get("Value") or [0])[0]))
        pairs += [(uid, s["0020000E"]["Value"][0]) for s in series]
    return pairs


async def plan_stone(base: str, auth: tuple[str, str]) -> Result:
    raw = Raw(base, auth)
    pairs = await list_queries(raw)
    study, wanted = pairs[-1]
    raw.meter = Meter()
    low: asyncio.Task[None] | None = None

    async def low_lane() -> None:
        for st, se in pairs:
            found = (await raw.get(f"/studies/{st}/series/{se}/instances?limit=1")).json()
            if found:
                await raw.get(
                    f"/studies/{st}/series/{se}/rendered?viewport=128,128", {"Accept": "image/jpeg"}
                )
        for st, se in pairs:
            if se != wanted:
                await raw.get(f"/studies/{st}/series/{se}/metadata")

    try:
        low = asyncio.create_task(low_lane())
        meta = (await raw.get(f"/studies/{study}/series/{wanted}/metadata")).json()  # high
        await _frame(raw, study, wanted, _middle_instance(meta))
        sent, received, took = raw.meter.stop()
    finally:
        if low is not None:
            low.cancel()
            await asyncio.gather(low, return_exceptions=True)
        await raw.aclose()
    return Result("Stone-like", sent, received, took, "thumbnails + /metadata, 1 low lane")


async def plan_ohif(base: str, auth: tuple[str, str]) -> Result:
    raw = Raw(base, auth)
    pairs = await list_queries(raw)
    study, wanted = pairs[-1]
    raw.meter = Meter()
    others: list[asyncio.Task[Any]] = []
    try:
        first = pairs[0]
        await raw.get(f"/studies/{first[0]}/series/{first[1]}/metadata")
        others = [
            asyncio.create_task(raw.get(f"/studies/{st}/series/{se}/metadata"))
            for st, se in pairs[1:]
        ]
        meta = (await others[-1]).json()
        await _frame(raw, study, wanted, _middle_instance(meta))
        sent, received, took = raw.meter.stop()
    finally:
        for t in others:
            t.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await raw.aclose()
    return Result("OHIF-like", sent, received, took, "every /metadata at once")


async def plan_pacs_tui(server: ServerSettings) -> Result:
    log = RequestLog(maxlen=10000)
    client = DicomWebClient(server, log)
    loader = Loader(client, Settings(server=server))
    try:
        from tui.dicomweb.query import StudyQuery

        raw_pairs: list[tuple[str, str]] = []
        patients = await loader.patients(StudyQuery(patient_id=PATIENT))
        studies = [st for p in patients for st in p.studies]
        for st in sorted(studies, key=lambda s: s.study_date or 0):
            series = await loader.open_study(st.study_uid)
            raw_pairs += [
                (st.study_uid, s.series_uid) for s in sorted(series, key=lambda s: s.number or 0)
            ]
        study, wanted = raw_pairs[-1]
        listed = len(log.records())
        started = 0

        def on_start(_info: Any) -> None:
            nonlocal started
            started += 1

        unsubscribe = log.subscribe_started(on_start)
        key = ("preview", study, wanted)
        ready = asyncio.get_running_loop().create_future()
        at_ready: list[Any] = []

        def on_state(node: Any, state: Any) -> None:
            if (
                node == key
                and state.state in (LoadState.LOADED, LoadState.FAILED)
                and not ready.done()
            ):
                # counted at the very moment the frame is ready
                at_ready.extend(
                    [started, sum(r.bytes for r in log.records()[listed:]), time.monotonic()]
                )
                ready.set_result(state)

        unsub_state = loader.subscribe(on_state)
        t0 = time.monotonic()
        loader.select_series(study, wanted, immediate=True)
        state = await asyncio.wait_for(ready, 60)
        if state.state is LoadState.FAILED:
            raise RuntimeError(state.error)
        sent_now, received, took = at_ready[0], at_ready[1], at_ready[2] - t0
        unsub_state()
        unsubscribe()
        meta = loader.peek_metadata(study, wanted)
        strategy = meta.strategy if meta else "?"
    finally:
        await loader.aclose()
        await client.aclose()
    return Result("pacs-tui", sent_now, received, took, f"Loader defaults ({strategy})")


async def baseline(base: str, auth: tuple[str, str]) -> tuple[float, float]:
    """One metadata query (QIDO instances with includefield, and WADO /metadata) then one
    frame, back to back: seconds for (qido + frame, wado + frame)."""
    raw = Raw(base, auth)
    try:
        pairs = await list_queries(raw)
        study, wanted = pairs[-1]
        fields = ",".join(DEFAULT_INCLUDEFIELD)
        t0 = time.monotonic()
        found = (
            await raw.get(f"/studies/{study}/series/{wanted}/instances?includefield={fields}")
        ).json()
        await _frame(raw, study, wanted, _middle_instance(found))
        qido = time.monotonic() - t0
        t0 = time.monotonic()
        meta = (await raw.get(f"/studies/{study}/series/{wanted}/metadata")).json()
        await _frame(raw, study, wanted, _middle_instance(meta))
        wado = time.monotonic() - t0
    finally:
        await raw.aclose()
    return qido, wado


async def drain(proxy: LatencyProxy) -> None:
    """Wait until the proxy serves nothing (dropped requests release their slot)."""
    t0 = time.monotonic()
    while proxy.in_flight and time.monotonic() - t0 < 30:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)


async def run(orthanc: PrivateOrthanc, repeat: int) -> str:
    rule = Rule(METADATA_PATTERN, delay=DELAY, max_concurrent=BACKEND_SLOTS)
    async with LatencyProxy(orthanc.rest_url, [rule], max_lifetime=900.0) as proxy:
        base = proxy.url(orthanc.dicomweb_url)
        auth = (orthanc.user, orthanc.password)
        server = ServerSettings(
            name="bench", url=base, user=orthanc.user, password=orthanc.password
        )
        runs: dict[str, list[Result]] = {}
        base_q: list[float] = []
        base_w: list[float] = []
        for _ in range(repeat):
            q, w = await baseline(base, auth)
            base_q.append(q)
            base_w.append(w)
            await drain(proxy)
            for name, coro in (
                ("Stone-like", plan_stone(base, auth)),
                ("OHIF-like", plan_ohif(base, auth)),
                ("pacs-tui", plan_pacs_tui(server)),
            ):
                runs.setdefault(name, []).append(await coro)
                await drain(proxy)
    bq, bw = statistics.median(base_q), statistics.median(base_w)
    lines = [
        f"Orthanc behind a storage-bound proxy: metadata/instance queries +{DELAY:.0f} s, "
        f"at most {BACKEND_SLOTS} served at a time; patient {PATIENT}: 2 studies, 8 series; "
        f"wanted: the last series. Median of {repeat} run(s).",
        "",
        "| plan | requests before first frame (beyond lists) | bytes before first frame "
        "| time to first frame | vs baseline |",
        "|---|---|---|---|---|",
    ]
    for name, results in runs.items():
        reqs = statistics.median(r.requests for r in results)
        nbytes = statistics.median(r.bytes for r in results)
        secs = statistics.median(r.seconds for r in results)
        lines.append(
            f"| {name} ({results[0].notes}) | {reqs:.0f} | {nbytes / 1024:.0f} KiB "
            f"| {secs:.2f} s | {secs / bq:.2f}x |"
        )
    lines += [
        "",
        f"Baseline, one metadata query + one frame back to back: "
        f"QIDO instances {bq:.2f} s, WADO /metadata {bw:.2f} s "
        f"(ratios are against the QIDO baseline).",
    ]
    return "\n".join(lines)


def main() -> int:
    """Start a private Orthanc with the sample set, run the plans, print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per plan (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pacs-tui-bench-") as tmp:
        files = sample.generate(Path(tmp) / "main")
        with PrivateOrthanc(name="pacs-tui bench") as orthanc:
            orthanc.upload(files)
            print(asyncio.run(run(orthanc, args.repeat)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
