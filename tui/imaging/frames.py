"""Pixel pipeline: one frame's bytes -> numpy array -> windowed 8-bit PIL image.

No network and no Textual here. Everything is synchronous and CPU-bound; the app runs it in a
thread. The steps live in their own modules (``decode``, ``window``, ``pixelformat``); this
one chains them and sizes the result to the physical aspect and the space on screen.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from tui.imaging.decode import decode_frame
from tui.imaging.pixelformat import PixelFormat
from tui.imaging.window import Window, apply_window, window_for

__all__ = [
    "display_size",
    "fit",
    "full_image",
    "preview",
    "render",
]

_MAX_RENDER_SIDE = 8192


def display_size(fmt: PixelFormat, shape: tuple[int, ...] | None = None) -> tuple[int, int]:
    """Full-resolution (width, height) with the physical aspect from the pixel spacing.

    The coarser direction is stretched (never shrunk), capped at 8192 pixels a side.
    """
    rows, cols = (shape[0], shape[1]) if shape is not None else (fmt.rows, fmt.columns)
    aspect = fmt.pixel_aspect
    w, h = float(cols), float(rows)
    if abs(aspect - 1.0) > 1e-3:
        if aspect > 1.0:
            h *= aspect
        else:
            w /= aspect
    scale = min(1.0, _MAX_RENDER_SIDE / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def _to_image(u8: np.ndarray) -> Image.Image:
    return Image.fromarray(u8, mode="RGB" if u8.ndim == 3 else "L")


def _resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    if img.size == size:
        return img
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def render(
    arr: np.ndarray, fmt: PixelFormat, window: Window | None = None, invert: bool = False
) -> Image.Image:
    """Windowed full-resolution PIL image (mode L or RGB) at the physical aspect ratio."""
    img = _to_image(apply_window(arr, fmt, window, invert))
    return _resize(img, display_size(fmt, arr.shape))


def _fit_size(w: int, h: int, max_w: int, max_h: int, upscale: bool) -> tuple[int, int]:
    if max_w <= 0 or max_h <= 0:
        raise ValueError(f"bad target size {max_w}x{max_h}")
    scale = min(max_w / w, max_h / h)
    if not upscale:
        scale = min(scale, 1.0)
    return max(1, min(max_w, round(w * scale))), max(1, min(max_h, round(h * scale)))


def fit(img: Image.Image, max_w: int, max_h: int, upscale: bool = False) -> Image.Image:
    """Scale ``img`` to fit in ``max_w`` x ``max_h`` keeping its aspect ratio.

    Never enlarges unless ``upscale``. Large reductions use ``Image.reduce`` first (via
    ``reducing_gap``), then Lanczos.
    """
    return _resize(img, _fit_size(img.width, img.height, max_w, max_h, upscale))


def _windowed(
    data: bytes,
    fmt: PixelFormat,
    ts: str | None,
    window: Window | None,
    invert: bool,
    window_index: int,
) -> tuple[Image.Image, tuple[int, int]]:
    """Decode and window at full resolution; also the display size the caller resizes to.

    Resizing is left to the caller so a preview goes straight to its target size in one step.
    """
    arr = decode_frame(data, fmt, ts)
    if window is None:
        window = window_for(fmt, arr, window_index)
    return _to_image(apply_window(arr, fmt, window, invert)), display_size(fmt, arr.shape)


def preview(
    data: bytes,
    fmt: PixelFormat,
    ts: str | None,
    window: Window | None = None,
    invert: bool = False,
    size: tuple[int, int] = (160, 96),
    *,
    window_index: int = 0,
    upscale: bool = False,
) -> Image.Image:
    """Frame bytes -> windowed image fitted in ``size`` (w, h) at the physical aspect.

    One resize straight from the windowed full-resolution image to the target size.
    ``window`` None uses header window ``window_index`` (or the data). Raises
    ``UndecodableFrame``.
    """
    img, (dw, dh) = _windowed(data, fmt, ts, window, invert, window_index)
    return _resize(img, _fit_size(dw, dh, size[0], size[1], upscale))


def full_image(
    data: bytes,
    fmt: PixelFormat,
    ts: str | None,
    window: Window | None = None,
    invert: bool = False,
    *,
    window_index: int = 0,
) -> Image.Image:
    """Frame bytes -> windowed full-resolution image at the physical aspect (``pacs-tui frame``)."""
    img, size = _windowed(data, fmt, ts, window, invert, window_index)
    return _resize(img, size)
