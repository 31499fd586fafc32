"""Benchmark: pacs-tui's DicomWebClient vs dicomweb-client vs plain Orthanc REST raw frames.

Run on demand (not part of the test suite):

    .venv/bin/pip install -e '.[bench]'        # dicomweb-client
    .venv/bin/python benchmarks/bench_client.py [--runs 5]

Starts a private Orthanc (tui.orthanc.PrivateOrthanc) with the generated sample data and, on
that same server in one run, times:

(a) metadata of the 320-instance series: ours via QIDO /instances + includefield and via
    WADO-RS /metadata; dicomweb-client's retrieve_series_metadata;
(b) every frame of the 100-instance series: ours with concurrent frame requests at the
    configured concurrency; dicomweb-client's retrieve_instance_frames per instance (it offers
    gzip, like requests always does, and needs media_types=(("application/octet-stream",
    "*"),) because its default type="*/*" gets 400 from Orthanc); Orthanc REST
    /instances/{id}/frames/0/raw with Accept-Encoding: identity, sequential and at the same
    concurrency as ours;
(c) the same 100 frames in ONE WADO-RS series retrieval (`iter_series_frames`: whole instances,
    multipart/related; type="application/dicom", parsed with pydicom and split into frames),
    against the same request with bare httpx (the server's and the wire's share) and
    dicomweb-client's retrieve_series (which offers gzip, like requests always does).

Prints the median of N runs (after one warm-up) as a markdown table with ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui import sample  # noqa: E402
from tui.config import DEFAULT_INCLUDEFIELD, ServerSettings  # noqa: E402
from tui.dicomweb.client import FRAMES_ACCEPT, SERIES_ACCEPT, DicomWebClient  # noqa: E402
from tui.orthanc import PrivateOrthanc  # noqa: E402
from tui.sample.writer import write_series  # noqa: E402

FRAME_BYTES = 512 * 512 * 2


def interleaved(
    contenders: list[tuple[str, str, Callable[[], Any]]], runs: int
) -> list[list[float]]:
    """One warm-up each, then `runs` rounds in which every contender runs once, in a shuffled
    order (so that background load and cache effects hit all of them alike); ms per contender."""
    for _, _, fn in contenders:
        fn()
    times: list[list[float]] = [[] for _ in contenders]
    order = list(range(len(contenders)))
    rng = random.Random(0)
    for _ in range(runs):
        rng.shuffle(order)  # a fresh order each round: no one always runs after the same one
        for i in order:
            fn = contenders[i][2]
            t0 = time.perf_counter()
            fn()
            times[i].append((time.perf_counter() - t0) * 1000.0)
    return times


def run_async(
    loop: asyncio.AbstractEventLoop, coro_fn: Callable[[], Awaitable[Any]]
) -> Callable[[], Any]:
    """A blocking callable that runs `coro_fn()` on `loop`."""
    return lambda: loop.run_until_complete(coro_fn())


def main() -> None:
    """Start the private Orthanc, time every contender, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    try:
        from dicomweb_client.api import DICOMwebClient
    except ImportError:
        sys.exit("dicomweb-client is not installed: .venv/bin/pip install -e '.[bench]'")
    import requests

    md_series = sample.SERIES["ct320"]
    fr_series = sample.SERIES["ct100"]
    study_md, study_fr = md_series.study.study_uid, fr_series.study.study_uid

    with tempfile.TemporaryDirectory() as tmp, PrivateOrthanc(name="pacs-tui bench") as orthanc:
        paths = [p for s in (md_series, fr_series) for p in write_series(Path(tmp), s)]
        orthanc.upload(paths)
        settings = ServerSettings(
            url=orthanc.dicomweb_url, user=orthanc.user, password=orthanc.password
        )
        conc = settings.concurrency
        loop = asyncio.new_event_loop()
        ours = DicomWebClient(settings)

        session = requests.Session()
        session.auth = (orthanc.user, orthanc.password)
        dwc = DICOMwebClient(url=orthanc.dicomweb_url, session=session)

        rest = httpx.Client(
            auth=(orthanc.user, orthanc.password), headers={"Accept-Encoding": "identity"}
        )
        arest = httpx.AsyncClient(
            auth=(orthanc.user, orthanc.password),
            headers={"Accept-Encoding": "identity"},
            limits=httpx.Limits(max_connections=conc),
        )
        ids = rest.post(
            f"{orthanc.rest_url}/tools/find",
            json={"Level": "Instance", "Query": {"SeriesInstanceUID": fr_series.series_uid}},
        ).json()
        assert len(ids) == fr_series.instances

        # ---- (a) metadata
        async def ours_qido() -> None:
            res = await ours.search_instances(study_md, md_series.series_uid, DEFAULT_INCLUDEFIELD)
            assert len(res) == md_series.instances

        async def ours_wado() -> None:
            res = await ours.series_metadata(study_md, md_series.series_uid)
            assert len(res) == md_series.instances

        def dwc_metadata() -> None:
            res = dwc.retrieve_series_metadata(study_md, md_series.series_uid)
            assert len(res) == md_series.instances

        # ---- (b) frames
        async def ours_frames() -> None:
            parts = await asyncio.gather(
                *(
                    ours.frames(study_fr, fr_series.series_uid, uid, [1])
                    for uid in fr_series.sop_uids
                )
            )
            assert all(len(p[0].data) == FRAME_BYTES for p in parts)

        dwc_note = ""

        def dwc_frames() -> None:
            for uid in fr_series.sop_uids:
                (frame,) = dwc.retrieve_instance_frames(
                    study_fr,
                    fr_series.series_uid,
                    uid,
                    [1],
                    media_types=(("application/octet-stream", "*"),),
                )
                assert len(frame) == FRAME_BYTES

        try:
            dwc_frames()
        except Exception as exc:  # document what it cannot do and measure what it can
            dwc_note = f"retrieve_instance_frames failed ({type(exc).__name__}: {exc}); "
            dwc_note += "measured retrieve_instance instead"

            def dwc_frames() -> None:
                for uid in fr_series.sop_uids:
                    dwc.retrieve_instance(study_fr, fr_series.series_uid, uid)

        def rest_sequential() -> None:
            for oid in ids:
                r = rest.get(f"{orthanc.rest_url}/instances/{oid}/frames/0/raw")
                assert len(r.content) == FRAME_BYTES

        async def rest_concurrent() -> None:
            sem = asyncio.Semaphore(conc)

            async def one(oid: str) -> None:
                async with sem:
                    r = await arest.get(f"{orthanc.rest_url}/instances/{oid}/frames/0/raw")
                    assert len(r.content) == FRAME_BYTES

            await asyncio.gather(*(one(oid) for oid in ids))

        async def bare_dicomweb_frames() -> None:
            """Same DICOMweb URLs and headers as ours, bare httpx: the server's own cost."""
            sem = asyncio.Semaphore(conc)
            base = f"{orthanc.dicomweb_url}/studies/{study_fr}/series/{fr_series.series_uid}"

            async def one(uid: str) -> None:
                async with sem:
                    r = await arest.get(
                        f"{base}/instances/{uid}/frames/1", headers={"Accept": FRAMES_ACCEPT}
                    )
                    assert r.status_code == 200 and len(r.content) > FRAME_BYTES

            await asyncio.gather(*(one(uid) for uid in fr_series.sop_uids))

        # ---- (c) one series retrieval
        async def ours_series() -> None:
            got = await ours.series_frames(study_fr, fr_series.series_uid)
            assert len(got) == fr_series.instances
            assert all(len(i.frames) == 1 and len(i.frames[0]) == FRAME_BYTES for i in got)

        async def bare_series() -> None:
            """The same series request with bare httpx, body read but not parsed."""
            url = f"{orthanc.dicomweb_url}/studies/{study_fr}/series/{fr_series.series_uid}"
            r = await arest.get(url, headers={"Accept": SERIES_ACCEPT})
            assert r.status_code == 200 and len(r.content) > fr_series.instances * FRAME_BYTES

        def dwc_series() -> None:
            got = dwc.retrieve_series(study_fr, fr_series.series_uid)
            assert len(got) == fr_series.instances

        contenders: list[tuple[str, str, Callable[[], Any]]] = [
            ("metadata 320", "pacs-tui QIDO + 24 includefield", run_async(loop, ours_qido)),
            ("metadata 320", "pacs-tui WADO /metadata", run_async(loop, ours_wado)),
            ("metadata 320", "dicomweb-client retrieve_series_metadata", dwc_metadata),
            (f"frames 100 (c={conc})", "pacs-tui frames", run_async(loop, ours_frames)),
            ("frames 100", "dicomweb-client retrieve_instance_frames", dwc_frames),
            ("frames 100", "REST /frames/0/raw sequential", rest_sequential),
            (
                f"frames 100 (c={conc})",
                "REST /frames/0/raw concurrent",
                run_async(loop, rest_concurrent),
            ),
            (
                f"frames 100 (c={conc})",
                "bare httpx, same DICOMweb frames URLs",
                run_async(loop, bare_dicomweb_frames),
            ),
            (
                "frames 100 (series)",
                "pacs-tui series retrieval (one request)",
                run_async(loop, ours_series),
            ),
            (
                "frames 100 (series)",
                "bare httpx, same series request",
                run_async(loop, bare_series),
            ),
            ("frames 100 (series)", "dicomweb-client retrieve_series", dwc_series),
        ]
        runs = args.runs
        times = interleaved(contenders, runs)
        rows = [
            (task, who, statistics.median(times[i])) for i, (task, who, _) in enumerate(contenders)
        ]

        loop.run_until_complete(ours.aclose())
        loop.run_until_complete(arest.aclose())
        loop.close()
        rest.close()
        session.close()

    ref = {"metadata": rows[0][2], "frames": rows[3][2]}
    print(f"\nOrthanc sample data, median of {runs} interleaved runs (after one warm-up)\n")
    print("| task | client | median ms | ratio to pacs-tui |")
    print("|---|---|---:|---:|")
    for task, who, ms in rows:
        base = ref["metadata" if task.startswith("metadata") else "frames"]
        print(f"| {task} | {who} | {ms:.1f} | {ms / base:.2f}x |")
    if dwc_note:
        print(f"\nnote: {dwc_note}")
    m_dwc, f_ours, f_dwc, f_rest = rows[2][2], rows[3][2], rows[4][2], rows[6][2]
    print(
        f"\nmetadata: ours (QIDO) / dicomweb-client = {rows[0][2] / m_dwc:.2f} "
        f"(WADO: {rows[1][2] / m_dwc:.2f}); target <= 1"
    )
    print(f"frames: dicomweb-client / ours = {f_dwc / f_ours:.1f}x; target >= 5")
    print(f"frames: ours / REST concurrent = {f_ours / f_rest:.2f}; target <= 1.3")
    print(
        f"frames: ours / bare httpx on the same DICOMweb URLs = {f_ours / rows[7][2]:.2f} "
        "(client overhead)"
    )
    s_ours, s_bare, s_dwc, f_rest_seq = rows[8][2], rows[9][2], rows[10][2], rows[5][2]
    print(
        f"series retrieval: ours / REST sequential = {s_ours / f_rest_seq:.2f}, "
        f"ours / REST concurrent = {s_ours / f_rest:.2f}, "
        f"ours / pacs-tui frames = {s_ours / f_ours:.2f}"
    )
    print(
        f"series retrieval: dicomweb-client retrieve_instance_frames / ours = "
        f"{f_dwc / s_ours:.1f}x, retrieve_series / ours = {s_dwc / s_ours:.1f}x; "
        f"ours / bare httpx on the same request = {s_ours / s_bare:.2f} (parsing and splitting)"
    )


if __name__ == "__main__":
    main()
