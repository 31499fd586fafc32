"""VOI windowing: stored values -> 8-bit display values, and which window to use.

Windows are in modality units (after RescaleSlope/RescaleIntercept), as in the DICOM header.
The hot path (16-bit greyscale) windows through a cached 64 Ki-entry lookup table that folds
the modality LUT (slope/intercept), the VOI window and the inversion into one ``np.take``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from tui.imaging.errors import UndecodableFrame

if TYPE_CHECKING:
    # Only for annotations: pixelformat imports Window from here at run time.
    from tui.imaging.pixelformat import PixelFormat

__all__ = [
    "CT_PRESETS",
    "FROM_DATA",
    "Window",
    "apply_window",
    "auto_window",
    "resolve_preset",
    "window_for",
]


@dataclass(frozen=True)
class Window:
    """A VOI window in modality units; ``function`` is LINEAR, LINEAR_EXACT or SIGMOID."""

    center: float
    width: float
    function: str = "LINEAR"
    explanation: str = ""

    @property
    def low(self) -> float:
        """Lowest modality value that is not clipped to black."""
        return self.center - self.width / 2.0

    @property
    def high(self) -> float:
        """Highest modality value that is not clipped to white."""
        return self.center + self.width / 2.0

    def shift(self, dc: float = 0.0, dw: float = 0.0) -> Window:
        """Return the window moved by ``dc`` (centre) and widened by ``dw``; width stays >= 1."""
        return replace(self, center=self.center + dc, width=max(1.0, self.width + dw))

    def label(self) -> str:
        """Short text for a status line, e.g. ``C 40 W 80``."""
        return f"C {self.center:g} W {self.width:g}"


CT_PRESETS: dict[str, Window | None] = {
    "brain": Window(40, 80, explanation="brain"),
    "subdural": Window(75, 215, explanation="subdural"),
    "stroke": Window(40, 40, explanation="stroke"),
    "lung": Window(-600, 1500, explanation="lung"),
    "mediastinum": Window(50, 350, explanation="mediastinum"),
    "soft tissue": Window(50, 400, explanation="soft tissue"),
    "liver": Window(60, 160, explanation="liver"),
    "bone": Window(400, 1800, explanation="bone"),
    "from data": None,
}
"""CT window presets (centre/width in HU). ``None`` means "from data" (see ``auto_window``)."""

FROM_DATA = "from data"


def _window_float(x: np.ndarray, window: Window) -> np.ndarray:
    """Apply the DICOM VOI function (PS3.3 C.11.2.1.2) to float32 modality values -> [0, 255]."""
    c, w = float(window.center), float(window.width)
    fn = window.function.upper()
    if fn == "SIGMOID":
        w = max(w, 1e-6)
        with np.errstate(over="ignore"):
            y = 255.0 / (1.0 + np.exp(-4.0 * (x - c) / w, dtype=np.float32))
        return y.astype(np.float32, copy=False)
    if fn == "LINEAR_EXACT":
        w = max(w, 1e-6)
        y = ((x - c) / w + 0.5) * 255.0
    else:  # LINEAR (default, also for unknown functions)
        w = max(w, 1.0)
        if w == 1.0:  # degenerate: a threshold at c - 0.5
            return np.where(x > c - 0.5, np.float32(255.0), np.float32(0.0))
        y = ((x - (c - 0.5)) / (w - 1.0) + 0.5) * 255.0
    return np.clip(y, 0.0, 255.0).astype(np.float32, copy=False)


def _to_uint8(y: np.ndarray, invert: bool) -> np.ndarray:
    out = np.floor(y + 0.5).astype(np.uint8)
    if invert:
        np.subtract(255, out, out=out)
    return out


@lru_cache(maxsize=64)
def _lut(dtype: str, slope: float, intercept: float, window: Window, invert: bool) -> np.ndarray:
    """8-bit output LUT indexed by the stored value's unsigned bit pattern."""
    dt = np.dtype(dtype)
    bits = dt.itemsize * 8
    idx = np.arange(1 << bits, dtype=np.dtype(f"u{dt.itemsize}"))
    values = idx.view(dt).astype(np.float32)
    modality = values * np.float32(slope) + np.float32(intercept)
    lut = _to_uint8(_window_float(modality, window), invert)
    lut.flags.writeable = False
    return lut


def _modality(arr: np.ndarray, fmt: PixelFormat) -> np.ndarray:
    x = arr.astype(np.float32)
    if fmt.rescale_slope != 1.0 or fmt.rescale_intercept != 0.0:
        x *= np.float32(fmt.rescale_slope)
        x += np.float32(fmt.rescale_intercept)
    return x


def auto_window(arr: np.ndarray, fmt: PixelFormat) -> Window:
    """Window from the data: 0.5-99.5 percentiles of the frame's modality values.

    Samples at most ~64k pixels for speed. A flat frame gives a 1-wide window above its value
    (renders black; white for MONOCHROME1); NaNs are ignored.
    """
    flat = arr.reshape(-1)
    step = max(1, flat.size // 65536)
    sample = flat[::step]
    if sample.dtype.kind == "f":
        sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return Window(0.0, 1.0, fmt.voi_lut_function, "from data")
    lo, hi = (float(v) for v in np.percentile(sample, (0.5, 99.5)))
    if hi <= lo:
        lo, hi = float(sample.min()), float(sample.max())
    lo, hi = sorted(
        (
            lo * fmt.rescale_slope + fmt.rescale_intercept,
            hi * fmt.rescale_slope + fmt.rescale_intercept,
        )
    )
    function = (
        fmt.voi_lut_function if fmt.voi_lut_function in ("LINEAR_EXACT", "SIGMOID") else "LINEAR"
    )
    if hi - lo <= 0:
        return Window(lo + 1.0, 1.0, "LINEAR", "from data")
    if function == "LINEAR":
        width = max(hi - lo + 1.0, 2.0)  # covers [lo, hi] exactly with the -0.5/-1 terms
        return Window((lo + hi) / 2.0 + 0.5, width, function, "from data")
    return Window((lo + hi) / 2.0, hi - lo, function, "from data")


def window_for(fmt: PixelFormat, arr: np.ndarray, index: int = 0) -> Window:
    """The header window number ``index`` (modulo the count, so callers can cycle), or
    ``auto_window`` when the header has none."""
    windows = fmt.windows
    if windows:
        return windows[index % len(windows)]
    return auto_window(arr, fmt)


def resolve_preset(name: str, fmt: PixelFormat, arr: np.ndarray) -> Window:
    """Window for a ``CT_PRESETS`` name ("from data" -> ``auto_window``); KeyError if unknown."""
    preset = CT_PRESETS[name]
    return auto_window(arr, fmt) if preset is None else preset


def apply_window(
    arr: np.ndarray, fmt: PixelFormat, window: Window | None = None, invert: bool = False
) -> np.ndarray:
    """Stored values -> uint8 display values (same shape; colour keeps its 3 channels).

    Greyscale: modality LUT, VOI window (``window`` or ``window_for(fmt, arr)``), then
    inversion when MONOCHROME1 xor ``invert``. Integer 8/16-bit input goes through a cached
    lookup table; other input is windowed in float32. Colour: 8-bit as is, deeper data scaled
    from BitsStored; ``invert`` negates it. PALETTE COLOR raises ``UndecodableFrame``.
    """
    if arr.ndim == 3:
        if arr.dtype == np.uint8:
            out = arr if not invert else 255 - arr
        else:
            shift = max(0, min(fmt.bits_stored, arr.dtype.itemsize * 8) - 8)
            out = (np.clip(arr, 0, None) >> shift).astype(np.uint8)
            if invert:
                out = 255 - out
        return np.ascontiguousarray(out)
    if fmt.photometric.startswith("PALETTE"):
        raise UndecodableFrame("PALETTE COLOR needs the palette LUT; not rendered locally")
    if window is None:
        window = window_for(fmt, arr)
    inv = invert != (fmt.photometric == "MONOCHROME1")
    if arr.dtype.kind in "iu" and arr.dtype.itemsize <= 2:
        lut = _lut(
            arr.dtype.str.lstrip("<>|="),
            float(fmt.rescale_slope),
            float(fmt.rescale_intercept),
            window,
            inv,
        )
        idx = arr.view(np.dtype(f"u{arr.dtype.itemsize}"))
        return np.take(lut, idx)
    return _to_uint8(_window_float(_modality(arr, fmt), window), inv)
