"""Key handling while 8 loads are in flight behind a slow proxy; frame arrival to screen.

Run: .venv/bin/python benchmarks/bench_keys.py [--presses 60] [--delay 6]

Starts a private Orthanc with the sample set, puts a latency proxy in front of it that holds
every series-metadata request for `--delay` seconds, starts 8 metadata loads (8 series) in
the app's loop, then presses j/k in the patients pane and measures each key press from
`pilot.press` to the cursor having moved (the press round trip, an upper bound on the app's
handling time). Then it opens the 100-slice CT series and steps through slices, measuring the
time from a frame's arrival (loader answer) to the image being painted (after refresh).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from latency_proxy import LatencyProxy, Rule  # noqa: E402

from tui import sample  # noqa: E402
from tui.config import ServerSettings, Settings  # noqa: E402
from tui.orthanc import PrivateOrthanc  # noqa: E402

# Series metadata by QIDO (/instances?...SeriesInstanceUID=, or /series/{uid}/instances) or WADO.
METADATA = r"(SeriesInstanceUID=[0-9.]+(&|$)|/series/[^/]+/(metadata|instances)(\?|$))"


def _stats(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return (
        f"n={len(values)} median={statistics.median(values):.1f} ms "
        f"p95={p95:.1f} ms max={values[-1]:.1f} ms"
    )


async def run(server: ServerSettings, presses: int, delay: float) -> dict[str, str]:
    from textual import events
    from textual_image.widget import HalfcellImage

    from tui.app.app import PacsApp
    from tui.app.series import SeriesScreen

    results: dict[str, str] = {}
    async with LatencyProxy(server.url, [Rule(METADATA, delay=delay)]) as proxy:
        slow = replace(server, url=proxy.url(server.url), concurrency=10)
        settings = Settings(
            server=slow,
            image_mode="halfcell",
            dwell_ms=0,
            lane_caps={"selected": 8, "list": 2, "prefetch": 1},
        )
        app = PacsApp(settings, image_class=HalfcellImage, image_mode="halfcell")
        async with app.run_test(size=(80, 24)) as pilot:
            while app.browse_screen() is None or not app.browse_screen().series:
                await pilot.pause(0.02)
            screen = app.browse_screen()
            eight = [s for s in sample.SERIES.values() if s.study_key in ("ct", "mr")][:8]
            for spec in eight:
                app.run_worker(
                    app.loader.metadata(spec.study.study_uid, spec.series_uid), exit_on_error=False
                )
            while app.request_log.in_flight < 8:
                await pilot.pause(0.01)
            in_flight_before = app.request_log.in_flight
            patients = screen.tables[0]
            latencies, repaints, round_trips = [], [], []
            for _ in range(presses):
                key = "j"
                before = patients.cursor_row
                t0 = time.perf_counter()
                # The key enters the app as the terminal driver delivers it; done when the
                # cursor has moved (the highlight message is then on its way).
                app.post_message(events.Key(key, key))
                while patients.cursor_row == before:
                    await asyncio.sleep(0)
                latencies.append((time.perf_counter() - t0) * 1000)
                painted: list[float] = []
                app.call_after_refresh(lambda p=painted: p.append(time.perf_counter()))
                while not painted:
                    await asyncio.sleep(0.001)
                repaints.append((painted[0] - t0) * 1000)
                await pilot.pause()
                before = patients.cursor_row
                t0 = time.perf_counter()
                await pilot.press("k" if key == "j" else "j")
                round_trips.append((time.perf_counter() - t0) * 1000)
            in_flight_after = app.request_log.in_flight
            results["key handled, 8 loads in flight"] = _stats(latencies)
            results["key to repaint, 8 loads in flight"] = _stats(repaints)
            results["pilot.press round trip (upper bound)"] = _stats(round_trips)
            results["in flight before/after"] = f"{in_flight_before}/{in_flight_after}"

        # Frame arrival -> painted, on the direct server (no delay), 100-slice CT.
        settings = Settings(server=server, image_mode="halfcell", dwell_ms=0)
        app = PacsApp(settings, image_class=HalfcellImage, image_mode="halfcell")
        ct100 = sample.SERIES["ct100"]
        async with app.run_test(size=(80, 24)) as pilot:
            while app.browse_screen() is None or not app.browse_screen().series:
                await pilot.pause(0.02)
            screen = app.browse_screen()
            await pilot.press("enter", "enter")
            while screen.tables[2].current_key() != ct100.series_uid:
                await pilot.press("j")
            await pilot.press("enter")
            while not isinstance(app.screen, SeriesScreen) or app.screen.shown_index is None:
                await pilot.pause(0.01)
            view = app.screen
            shown = []
            for _ in range(30):
                index = view.index
                await pilot.press("j")
                while (
                    view.shown_index == index
                    or view.frame_shown_at is None
                    or view.frame_shown_at < view.frame_arrived_at
                ):
                    await pilot.pause(0.005)
                shown.append((view.frame_shown_at - view.frame_arrived_at) * 1000)
            results["frame arrival -> image on screen"] = _stats(shown)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=60)
    parser.add_argument("--delay", type=float, default=20.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pacs-tui-bench-"))
    files = sample.generate(tmp / "main")
    with PrivateOrthanc(name="bench_keys") as orthanc:
        orthanc.upload(files)
        server = ServerSettings(
            name="bench", url=orthanc.dicomweb_url, user=orthanc.user, password=orthanc.password
        )
        results = asyncio.run(run(server, args.presses, args.delay))
    for name, value in results.items():
        print(f"{name:38s} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
