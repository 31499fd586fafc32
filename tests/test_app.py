"""Pilot tests of the browser against the real test Orthanc (see tests/conftest.py)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from tests.latency_proxy import LatencyProxy, Rule, series_metadata_pattern
from tui import sample
from tui.app.app import PacsApp
from tui.app.browse import BrowseScreen, patient_key
from tui.app.help import HelpScreen
from tui.app.requests import RequestsScreen
from tui.app.search import SearchForm
from tui.app.series import SeriesScreen
from tui.config import ServerSettings, Settings

pytestmark = pytest.mark.orthanc

DONE = re.compile(r"^\d+(\.\d)? (ms|s)\b")
CT = sample.STUDIES["ct"]
CT100 = sample.SERIES["ct100"]
CT20 = sample.SERIES["ct20"]


def make_app(server: ServerSettings, **kwargs: Any) -> PacsApp:
    """An app on the test server with half-cell previews."""
    from textual_image.widget import HalfcellImage

    page_size = kwargs.pop("page_size", 50)
    settings = Settings(server=server, image_mode="halfcell", **kwargs)
    return PacsApp(settings, image_class=HalfcellImage, image_mode="halfcell", page_size=page_size)


def screen_text(app: PacsApp) -> str:
    """What the terminal shows, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def wait_for(
    pilot: Any, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
) -> Any:
    """Poll (letting the app run) until predicate() is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.02)
    raise AssertionError(f"timed out waiting for {what}\n{screen_text(pilot.app)}")


def browse(app: PacsApp) -> BrowseScreen:
    screen = app.browse_screen()
    assert screen is not None
    return screen


async def ready(pilot: Any) -> BrowseScreen:
    """Wait for the first page of patients."""
    app = pilot.app
    await wait_for(
        pilot,
        lambda: (
            app.browse_screen() is not None and browse(app).patients and browse(app).current_study
        ),
        what="first page",
    )
    return browse(app)


async def go_to_series(pilot: Any, series: sample.SeriesSpec) -> BrowseScreen:
    """From the start: patient of `series`, its study, then the series row (with keys)."""
    screen = await ready(pilot)
    patients, studies, table = screen.tables
    study = series.study
    while patients.current_key() != patient_key(series.patient.patient_id):
        await pilot.press("j")
    await pilot.press("enter")
    while studies.current_key() != study.study_uid:
        await pilot.press("j")
    await wait_for(pilot, lambda: series.series_uid in table.rows, what="series list")
    await pilot.press("enter")
    assert table.has_focus
    while table.current_key() != series.series_uid:
        await pilot.press("j")
    return screen


async def test_browse_down_to_series_and_back(server_settings: ServerSettings) -> None:
    app = make_app(server_settings)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await go_to_series(pilot, CT100)
        text = screen_text(app)
        assert "Müller, Zoë" in text and "CT Thorax Abdomen" in text and "Thorax 3mm" in text
        assert " pacs-tui " in text.splitlines()[0] and "Orthanc" in text.splitlines()[0]
        await pilot.press("enter")
        series_screen = await wait_for(
            pilot, lambda: isinstance(app.screen, SeriesScreen) and app.screen, what="series view"
        )
        await wait_for(pilot, lambda: series_screen.shown_index is not None, what="preview")
        text = screen_text(app)
        assert "51/100" in text and "Instances   100" in text and "qido" in text
        assert "▀" in text
        await pilot.press("j")
        await wait_for(pilot, lambda: series_screen.shown_index == 51, what="next slice")
        assert "52/100" in screen_text(app)
        await pilot.press("G")
        await wait_for(pilot, lambda: series_screen.shown_index == 99, what="last slice")
        await pilot.press("2", "i")
        await wait_for(pilot, lambda: "lung" in screen_text(app) and "inverted" in screen_text(app))
        await pilot.press("escape")
        assert isinstance(app.screen, BrowseScreen)
        assert screen.tables[2].current_key() == CT100.series_uid
        assert app.loader.selection == (CT.study_uid, CT100.series_uid)
        await pilot.press("escape")
        assert screen.tables[1].has_focus
        assert app.loader.selection is None


async def test_row_states_loading_loaded_failed_retry(server_settings: ServerSettings) -> None:
    upstream = server_settings.url
    fail = Rule(series_metadata_pattern(CT20.series_uid), fail_status=500)
    slow = Rule(series_metadata_pattern(CT100.series_uid), delay=0.8)
    async with LatencyProxy(upstream, [fail, slow]) as proxy:
        server = replace(server_settings, url=proxy.url(upstream), retries=0)
        app = make_app(server, dwell_ms=0)
        seen: list[str] = []
        async with app.run_test(size=(80, 24)) as pilot:
            app.loader.subscribe(lambda key, st: seen.append(f"{key[0]}:{key[-1]}:{st.state}"))
            screen = await go_to_series(pilot, CT100)
            table = screen.tables[2]

            def label(uid: str) -> str:
                return table.row_for(uid).cells[-1].plain

            await wait_for(
                pilot, lambda: label(CT100.series_uid).startswith("loading"), what="loading label"
            )
            await pilot.pause(0.3)
            assert label(CT100.series_uid).startswith("loading 0.")  # running elapsed time
            assert f"series:{CT100.series_uid}:queued" in seen
            await wait_for(pilot, lambda: DONE.match(label(CT100.series_uid)), what="loaded label")
            assert f"series:{CT100.series_uid}:loaded" in seen
            # The failing one: its row only.
            await pilot.press("k")
            assert table.current_key() == CT20.series_uid
            await wait_for(
                pilot, lambda: label(CT20.series_uid).startswith("failed"), what="failed label"
            )
            assert "500" in label(CT20.series_uid)
            assert DONE.match(label(CT100.series_uid))
            proxy.rules.remove(fail)
            await pilot.press("r")
            await wait_for(
                pilot, lambda: DONE.match(label(CT20.series_uid)), what="loaded after retry"
            )


async def test_filter_rows_in_view(server_settings: ServerSettings) -> None:
    app = make_app(server_settings)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await ready(pilot)
        patients = screen.tables[0]
        total = patients.row_count
        assert total >= 4
        await pilot.press("slash", *"ptui002")
        assert patients.row_count == 1
        assert patients.current_key() == patient_key("PTUI002")
        assert "/ptui002" in screen_text(app)
        await pilot.press("enter")  # keep the filter, back to the table
        assert patients.has_focus and patients.row_count == 1
        await pilot.press("slash", "x", "x", "x")
        assert "no row matches" in screen_text(app)
        await pilot.press("escape")  # esc in the prompt clears
        assert patients.row_count == total


async def test_search_form_with_paging(server_settings: ServerSettings) -> None:
    app = make_app(server_settings, page_size=2)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("f")
        assert isinstance(app.screen, SearchForm)
        await pilot.press(*"PTUI*")  # patient name field first
        app.screen.query_one("#search-name").value = ""
        app.screen.query_one("#search-pid").value = "PTUI*"
        app.screen.query_one("#search-pid").focus()
        await pilot.press("enter")
        screen = browse(app)
        await wait_for(
            pilot, lambda: screen.study_query is not None and screen.patients, what="search results"
        )
        assert screen.study_query.patient_id == "PTUI*"
        patients = screen.tables[0]
        assert "search" in screen_text(app).splitlines()[1]
        # Scroll to the end: the next pages load (2 studies a page, 4 studies in all).
        for _ in range(6):
            await pilot.press("end")
            await pilot.pause(0.2)
        await wait_for(pilot, lambda: screen.exhausted, what="all pages")
        keys = {r.key for r in patients.items}
        assert keys == {patient_key(p.patient_id) for p in sample.PATIENTS.values()}
        urls = [r.url for r in app.request_log.records() if r.kind == "qido-studies"]
        assert any("offset=2" in u for u in urls) and all("limit=2" in u for u in urls[-3:])
        assert all("PatientID=PTUI*" in u for u in urls[-3:])


async def test_requests_view(server_settings: ServerSettings) -> None:
    app = make_app(server_settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await go_to_series(pilot, CT100)
        await wait_for(
            pilot,
            lambda: any(r.kind == "wado-frames" for r in app.request_log.records()),
            what="a frame",
        )
        await wait_for(pilot, lambda: app.request_log.in_flight == 0, what="quiet")
        await pilot.press("R")
        screen = app.screen
        assert isinstance(screen, RequestsScreen)
        table = screen.query_one("#requests")
        await wait_for(pilot, lambda: table.row_count == len(app.request_log.records()))
        records = app.request_log.records()
        first = table.items[0].data
        assert first is records[-1]  # newest first
        text = screen_text(app)
        assert f"{len(records)} requests" in text and "slowest" in text and "in flight" in text
        await pilot.press("s")
        totals = [r.data.total_ms for r in table.items]
        assert totals == sorted(totals, reverse=True)
        await pilot.press("t")  # kind: qido-studies
        assert {r.data.kind for r in table.items} == {"qido-studies"}
        await pilot.press("o")  # outcome: ok
        assert {r.data.outcome for r in table.items} == {"ok"}
        await pilot.press("escape")
        assert isinstance(app.screen, BrowseScreen)
        await pilot.press("colon", *"requests", "enter")
        assert isinstance(app.screen, RequestsScreen)


async def test_help_lists_the_keys_of_the_view(server_settings: ServerSettings) -> None:
    app = make_app(server_settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "Keys: browse" in text and "Filter" in text and "Open" in text
        assert "Invert" not in text
        await pilot.press("escape")
        assert isinstance(app.screen, BrowseScreen)
        await go_to_series(pilot, CT20)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SeriesScreen))
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "Keys: series" in text and "Invert" in text and "Next slice" in text
        assert "slice-next" in text and "invert" in text  # the ids that [keys] remaps


async def test_remapped_keys(server_settings: ServerSettings) -> None:
    app = make_app(server_settings, keymap={"requests": "x", "cursor-down": "n"})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await ready(pilot)
        patients = screen.tables[0]
        await pilot.press("n")
        assert patients.cursor_row == 1
        await pilot.press("R")
        assert isinstance(app.screen, BrowseScreen)
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        assert re.search(r"│ x\s+Requests", screen_text(app)), screen_text(app)
        await pilot.press("escape", "x")
        assert isinstance(app.screen, RequestsScreen)


async def test_deep_link_study(server_settings: ServerSettings) -> None:
    app = make_app(server_settings, study=CT.study_uid)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = browse(app)
        await wait_for(pilot, lambda: screen.series, what="series of the study")
        assert screen.current_study == CT.study_uid
        assert screen.tables[2].has_focus or screen.tables[1].has_focus
        assert app.loader.selection is None  # listed, none selected
        assert not [r for r in app.request_log.records() if r.kind == "qido-instances"]


@pytest.mark.parametrize("with_study", [True, False], ids=["study+series", "series alone"])
async def test_deep_link_series(server_settings: ServerSettings, with_study: bool) -> None:
    study = CT.study_uid if with_study else None
    app = make_app(server_settings, study=study, series=CT20.series_uid)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = browse(app)
        await wait_for(
            pilot, lambda: app.loader.selection == (CT.study_uid, CT20.series_uid), what="selection"
        )
        table = screen.tables[2]
        assert table.has_focus and table.current_key() == CT20.series_uid
        await wait_for(
            pilot,
            lambda: table.row_for(CT20.series_uid).cells[-1].plain.endswith("ms"),
            what="loaded",
        )
        fetched = {
            r.series_uid
            for r in app.request_log.records()
            if r.kind in ("qido-instances", "wado-metadata")
        }
        assert fetched == {CT20.series_uid}
        lookups = [  # the study-less /series?SeriesInstanceUID= search
            r for r in app.request_log.records() if r.kind == "qido-series" and r.study_uid is None
        ]
        assert len(lookups) == (0 if with_study else 1)


async def test_deep_link_unknown_series(server_settings: ServerSettings) -> None:
    app = make_app(server_settings, series="1.2.3.999")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = browse(app)
        await wait_for(pilot, lambda: screen.patients, what="all patients instead")
        assert app.loader.selection is None


async def test_hostile_patient_name_is_shown_literally(server_settings: ServerSettings) -> None:
    app = make_app(server_settings)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await ready(pilot)
        key = patient_key(sample.HOSTILE_PATIENT.patient_id)
        await wait_for(pilot, lambda: key in screen.tables[0].rows)
        while screen.tables[0].current_key() != key:
            await pilot.press("j")
        await pilot.pause(0.2)
        strips = app.screen._compositor.render_strips()
        lines = [s.text for s in strips]
        assert any("[red]X[/red]␛[2J, Evil" in line for line in lines), "\n".join(lines)
        assert "[red]X[/red]" in lines[1]  # breadcrumbs too
        for strip in strips:
            for segment in strip:
                assert "\x1b" not in segment.text
                if "[red]X" in segment.text and segment.style and segment.style.color:
                    assert segment.style.color.name != "red"
        assert lines[0].startswith(" pacs-tui ")
        assert len(lines) == 24 and "Patients" in lines[2]
        svg = app.export_screenshot()
        assert "\x1b" not in svg


async def test_no_image_series(server_settings: ServerSettings) -> None:
    app = make_app(server_settings)
    sr = sample.SERIES["sr"]
    async with app.run_test(size=(80, 24)) as pilot:
        await go_to_series(pilot, sr)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "no image" in screen_text(app), what="no image")
        await asyncio.sleep(0)


async def test_undecodable_frame_falls_back_to_server_rendering(
    server_settings: ServerSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frame the local pipeline cannot decode (a fault injected here: the sample data decodes
    fine) is shown from the real server's /rendered JPEG, and the series view says so."""
    import tui.imaging.decode as decode
    from tui.imaging.errors import UndecodableFrame

    def undecodable(*_args: Any, **_kwargs: Any) -> Any:
        raise UndecodableFrame("no decoder for this test")

    monkeypatch.setattr(decode, "decode_frame", undecodable)
    app = make_app(server_settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await go_to_series(pilot, CT20)
        await pilot.press("enter")
        series_screen = await wait_for(
            pilot, lambda: isinstance(app.screen, SeriesScreen) and app.screen, what="series view"
        )
        await wait_for(pilot, lambda: series_screen.shown_index is not None, what="preview")
        assert "server-rendered JPEG" in series_screen.image_note
        assert "no decoder for this test" in series_screen.image_note
        text = screen_text(app)
        assert "server-rendered" in text and "▀" in text
        rendered = [r for r in app.request_log.records() if r.kind == "wado-rendered"]
        assert (
            rendered and rendered[-1].status == 200 and rendered[-1].series_uid == CT20.series_uid
        )


async def test_deep_link_patient(server_settings: ServerSettings) -> None:
    p3 = sample.PATIENTS["p3"]
    app = make_app(server_settings, patient=p3.patient_id)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = browse(app)
        await wait_for(pilot, lambda: screen.patients, what="the patient")
        assert list(screen.patients) == [patient_key(p3.patient_id)]
        await wait_for(pilot, lambda: "Παπαδόπουλος, Νίκος" in screen_text(app), what="name")
        studies = [r for r in app.request_log.records() if r.kind == "qido-studies"]
        assert any(f"PatientID={p3.patient_id}" in r.url for r in studies)
        assert app.loader.selection is None


@pytest.mark.parametrize("policy", ["none", "study"])
async def test_prefetch_policy_from_the_browser(server_settings: ServerSettings, policy: str):
    """Opening a study prefetches nothing by default; with `study`, every series' metadata,
    one at a time, in the prefetch lane."""
    app = make_app(server_settings, prefetch=policy)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await ready(pilot)
        await wait_for(pilot, lambda: CT100.series_uid in screen.series, what="CT series list")
        ct_series = set(screen.series)

        def prefetched() -> set[str]:
            return {
                r.series_uid
                for r in app.request_log.records()
                if r.purpose == "prefetch" and r.kind in ("qido-instances", "wado-metadata")
            }

        if policy == "none":
            await pilot.pause(1.0)
            assert prefetched() == set()
            assert not [r for r in app.request_log.records() if r.kind != "qido-studies"
                        and r.kind not in ("qido-series", "other")]  # fmt: skip
        else:
            await wait_for(pilot, lambda: prefetched() == ct_series, timeout=20, what="prefetch")
            records = [r for r in app.request_log.records() if r.purpose == "prefetch"]
            spans = sorted((_start(r), _start(r) + r.total_ms / 1000) for r in records)
            overlaps = sum(1 for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1] - 2e-3)
            assert overlaps == 0  # one at a time


def _start(record: Any) -> float:
    """When the request started (`ts` is its start, to the millisecond)."""
    import datetime as dt

    return dt.datetime.fromisoformat(record.ts.replace("Z", "+00:00")).timestamp()
