"""Benchmark the pixel pipeline: 512x512 int16 CT frame bytes -> preview / full-res image.

Run: .venv/bin/python benchmarks/bench_imaging.py [--runs 200]
Prints median and p95 per stage in milliseconds (first run excluded as warm-up).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from tui.imaging.decode import decode_frame
from tui.imaging.frames import full_image, preview
from tui.imaging.pixelformat import PixelFormat
from tui.imaging.window import Window, apply_window

RLE = "1.2.840.10008.1.2.5"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


def make_ct(rows: int = 512, cols: int = 512, seed: int = 0) -> np.ndarray:
    """A CT-like int16 slice: air outside, soft-tissue disc, bone ring, noise (stored values)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols]
    r = np.hypot(yy - rows / 2, xx - cols / 2)
    hu = np.full((rows, cols), -1000.0)
    hu[r < rows * 0.42] = 40.0
    hu[(r > rows * 0.36) & (r < rows * 0.40)] = 900.0
    hu += rng.normal(0, 12, hu.shape)
    return (hu + 1024).clip(-2048, 4095).astype(np.int16)  # intercept -1024


def rle_frame(arr: np.ndarray) -> bytes:
    """RLE-compress one frame with pydicom (for the encapsulated case)."""
    from pydicom.pixels import get_encoder

    enc = get_encoder(RLE)
    return enc.encode(
        arr,
        rows=arr.shape[0],
        columns=arr.shape[1],
        samples_per_pixel=1,
        bits_allocated=16,
        bits_stored=16,
        pixel_representation=1,
        photometric_interpretation="MONOCHROME2",
        number_of_frames=1,
    )


def timeit(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median and p95 in ms over ``runs`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


def main() -> None:
    """Run the benchmark and print a table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()

    arr = make_ct()
    data = arr.tobytes()
    fmt = PixelFormat(
        rows=512,
        columns=512,
        bits_allocated=16,
        bits_stored=16,
        pixel_representation=1,
        rescale_slope=1.0,
        rescale_intercept=-1024.0,
        window_centers=(40.0,),
        window_widths=(400.0,),
        pixel_spacing=(0.7, 0.7),
    )
    fmt_auto = PixelFormat(rows=512, columns=512, pixel_representation=1, rescale_intercept=-1024.0)
    rle = rle_frame(arr)
    moving = iter(range(10**9))

    def preview_moving_window() -> object:
        # A new window on every call: measures the LUT rebuild (the user dragging the window).
        return preview(data, fmt, EXPLICIT_LE, Window(40 + next(moving) % 1000, 400))

    rows: list[tuple[str, Callable[[], object]]] = [
        ("decode native", lambda: decode_frame(data, fmt, EXPLICIT_LE)),
        ("window (LUT) 512x512", lambda: apply_window(arr, fmt)),
        (
            "window (float32) 512x512",
            lambda: apply_window(arr.astype(np.int32), fmt, Window(40, 400)),
        ),
        ("preview 160x96 native", lambda: preview(data, fmt, EXPLICIT_LE, size=(160, 96))),
        ("preview 80x48 native", lambda: preview(data, fmt, EXPLICIT_LE, size=(80, 48))),
        ("preview 160x96 auto window", lambda: preview(data, fmt_auto, EXPLICIT_LE)),
        ("preview 160x96 new window", preview_moving_window),
        ("preview 160x96 RLE", lambda: preview(rle, fmt, RLE, size=(160, 96))),
        ("full_image 512x512 native", lambda: full_image(data, fmt, EXPLICIT_LE)),
    ]
    print(f"512x512 int16 CT, {args.runs} runs (ms)")
    print(f"{'stage':<30} {'median':>8} {'p95':>8}")
    for name, fn in rows:
        med, p95 = timeit(fn, args.runs)
        print(f"{name:<30} {med:8.2f} {p95:8.2f}")


if __name__ == "__main__":
    main()
