"""Snapshot tests of the browse, series and requests views (80x24 and 120x40).

Request times and load times vary from run to run, so these use a deterministic fake loader
and a request log with fixed records (the behaviour tests in test_app.py use the real Orthanc).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import numpy as np
import pytest

from tui.app.app import PacsApp
from tui.app.series import SeriesScreen
from tui.config import ServerSettings, Settings
from tui.dicomweb.model import Instance, Patient, PersonName, Series, Study
from tui.dicomweb.requestlog import RequestLog, RequestRecord
from tui.loader import FrameResult, LoadState, NodeState, SeriesMetadata

NOW = 1000.0
STUDY = "1.2.3.1"
SIZES = [(80, 24), (120, 40)]


def _study(
    uid: str, pid: str, name: str, date: dt.date, desc: str, acc: str, mods: tuple[str, ...], n: int
) -> Study:
    return Study(
        study_uid=uid,
        patient_id=pid,
        patient_name=PersonName(name),
        patient_birth_date=dt.date(1961, 3, 4),
        patient_sex="F",
        study_date=date,
        description=desc,
        accession=acc,
        modalities=mods,
        num_series=n,
    )


STUDIES = [
    _study(
        STUDY,
        "PTUI001",
        "Müller^Zoë",
        dt.date(2024, 3, 11),
        "CT Thorax Abdomen",
        "ACC0001",
        ("CT",),
        5,
    ),
    _study(
        "1.2.3.2", "PTUI001", "Müller^Zoë", dt.date(2024, 5, 2), "MR Head", "ACC0002", ("MR",), 1
    ),
    _study(
        "1.2.3.3",
        "EVIL001",
        "[red]X[/red]\x1b[2J^Evil",
        dt.date(2020, 1, 1),
        "[b]bold?[/b]",
        "ACC\x07",
        ("OT",),
        1,
    ),
]
SERIES = [
    Series(STUDY, "1.2.3.1.1", 1, "CT", "Scout single slice", 1),
    Series(STUDY, "1.2.3.1.2", 2, "CT", "Thorax 15mm", 20),
    Series(STUDY, "1.2.3.1.3", 3, "CT", "Thorax 3mm", 100),
    Series(STUDY, "1.2.3.1.4", 4, "CT", "Thorax 1mm", 320),
    Series(STUDY, "1.2.3.1.5", 5, "SR", "Text report", 1),
]
STATES = {
    ("study", STUDY): NodeState(LoadState.LOADED, duration_ms=9.0),
    ("series", STUDY, "1.2.3.1.1"): NodeState(LoadState.LOADED, duration_ms=12.0),
    ("series", STUDY, "1.2.3.1.2"): NodeState(LoadState.LOADING, started_at=NOW - 1.2),
    ("series", STUDY, "1.2.3.1.3"): NodeState(LoadState.QUEUED, queued_at=NOW - 0.1),
    ("series", STUDY, "1.2.3.1.4"): NodeState(LoadState.FAILED, error="HTTP 500: boom"),
    ("series", STUDY, "1.2.3.1.5"): NodeState(LoadState.LOADED, duration_ms=4.0),
    ("preview", STUDY, "1.2.3.1.5"): NodeState(LoadState.NO_IMAGE, detail="no pixel data (SR)"),
}


def _attrs(rows: int, cols: int) -> dict[str, Any]:
    def v(vr: str, *values: Any) -> dict[str, Any]:
        return {"vr": vr, "Value": list(values)}

    return {
        "0020000D": v("UI", STUDY),
        "0020000E": v("UI", "1.2.3.1.3"),
        "00080018": v("UI", "1.2.3.1.3.1"),
        "00280010": v("US", rows),
        "00280011": v("US", cols),
        "00280100": v("US", 16),
        "00280101": v("US", 12),
        "00280102": v("US", 11),
        "00280103": v("US", 0),
        "00280004": v("CS", "MONOCHROME2"),
        "00280002": v("US", 1),
        "00281050": v("DS", 1000),
        "00281051": v("DS", 2000),
        "00280030": v("DS", 0.7, 0.7),
        "00020010": v("UI", "1.2.840.10008.1.2.1"),
    }


INSTANCE = Instance.from_json(_attrs(64, 64))
METADATA = SeriesMetadata(
    STUDY, "1.2.3.1.3", (INSTANCE,) * 3, ((0, 1), (1, 1), (2, 1)), "qido", 35.0, 112000, True
)


def _pixels() -> bytes:
    y, x = np.mgrid[0:64, 0:64]
    disc = ((x - 32) ** 2 + (y - 28) ** 2 < 18**2) * 2500
    return (x * 30 + disc).astype("<u2").tobytes()


class FakeLoader:
    """Fixed data and states, no network, no time."""

    def __init__(self) -> None:
        self.selection: tuple[str, str] | None = None

    def subscribe(self, callback: Any) -> Any:
        return lambda: None

    def state(self, key: tuple[str, ...]) -> NodeState:
        return STATES.get(tuple(key), NodeState())

    async def patients(
        self, query: Any = None, *, offset: int = 0, limit: int = 50
    ) -> list[Patient]:
        from tui.dicomweb.model import group_patients

        return group_patients(STUDIES[offset : offset + limit])

    async def series_list(self, study_uid: str) -> list[Series]:
        return [s for s in SERIES if s.study_uid == study_uid]

    async def open_study(self, study_uid: str) -> list[Series]:
        return await self.series_list(study_uid)

    def select_series(self, study_uid: str, series_uid: str, *, immediate: bool = False) -> None:
        self.selection = (study_uid, series_uid)

    def clear_selection(self) -> None:
        self.selection = None

    async def metadata(self, study_uid: str, series_uid: str, **_: Any) -> SeriesMetadata:
        return METADATA

    async def frame(self, study_uid: str, series_uid: str, index: int, **_: Any) -> FrameResult:
        return FrameResult(
            study_uid, series_uid, index, INSTANCE, 1, _pixels(), "1.2.840.10008.1.2.1", 3.0
        )

    def retry(self, key: Any) -> None:
        pass

    async def aclose(self) -> None:
        pass


def _log() -> RequestLog:
    log = RequestLog()
    base = "http://pacs.example:8042/dicom-web/studies"
    rows = [
        ("19:30:00.100Z", "qido-studies", "list", None, 200, "ok", 8210, 5.1, 8.2, "?limit=50"),
        (
            "19:30:00.200Z",
            "qido-series",
            "list",
            None,
            200,
            "ok",
            6140,
            3.0,
            4.4,
            f"/{STUDY}/series",
        ),
        (
            "19:30:01.000Z",
            "qido-instances",
            "selected",
            "1.2.3.1.3",
            200,
            "ok",
            112000,
            30.5,
            35.0,
            f"/{STUDY}/series/1.2.3.1.3/instances",
        ),
        (
            "19:30:01.100Z",
            "wado-frames",
            "selected",
            "1.2.3.1.3",
            200,
            "ok",
            524842,
            1.0,
            2.0,
            f"/{STUDY}/series/1.2.3.1.3/instances/1.2.3.1.3.1/frames/1",
        ),
        (
            "19:30:02.000Z",
            "qido-instances",
            "selected",
            "1.2.3.1.4",
            500,
            "http-error",
            120,
            9.0,
            9.5,
            f"/{STUDY}/series/1.2.3.1.4/instances",
        ),
        (
            "19:30:03.000Z",
            "wado-metadata",
            "prefetch",
            "1.2.3.1.2",
            None,
            "cancelled",
            0,
            None,
            1200.0,
            f"/{STUDY}/series/1.2.3.1.2/metadata",
        ),
    ]
    for ts, kind, purpose, series, status, outcome, size, ttfb, total, path in rows:
        log.add(
            RequestRecord(
                f"2026-12-04T{ts}",
                "GET",
                base + path,
                kind,
                purpose,
                STUDY if series else None,
                series,
                status,
                outcome,
                size,
                ttfb,
                total,
                1,
            ),
            finished=False,
        )
    return log


def make_app() -> PacsApp:
    from textual_image.widget import HalfcellImage

    settings = Settings(
        server=ServerSettings(name="main", url="http://pacs.example:8042/dicom-web", user="admin")
    )
    return PacsApp(
        settings,
        client=object(),
        loader=FakeLoader(),
        request_log=_log(),
        image_class=HalfcellImage,
        image_mode="halfcell",
        clock=lambda: NOW,
        server_info="Orthanc 1.10.1",
    )


async def until(pilot: Any, predicate: Any, what: str, timeout: float = 10.0) -> None:
    """Let the app run until predicate() holds; fail (never hang) after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def _to_series_pane(pilot: Any) -> None:
    app = pilot.app
    await until(pilot, lambda: app.browse_screen() is not None and app.browse_screen().series,
                "the series list")  # fmt: skip
    await pilot.press("enter", "enter", "j")
    await pilot.pause(0.05)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_browse_view(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=_to_series_pane)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_series_view_with_halfcell_preview(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Any) -> None:
        await _to_series_pane(pilot)
        await pilot.press("j", "enter")
        await until(
            pilot,
            lambda: (
                isinstance(pilot.app.screen, SeriesScreen)
                and pilot.app.screen.shown_index is not None
            ),
            "the preview",
        )
        await pilot.pause(0.05)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_requests_view(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Any) -> None:
        await until(pilot, lambda: pilot.app.browse_screen() is not None, "the browser")
        await pilot.press("R")
        await pilot.pause(0.05)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES[:1], ids=lambda s: f"{s[0]}x{s[1]}")
def test_requests_view_slowest_first(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Any) -> None:
        await until(pilot, lambda: pilot.app.browse_screen() is not None, "the browser")
        await pilot.press("R", "s")
        await pilot.pause(0.05)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)
