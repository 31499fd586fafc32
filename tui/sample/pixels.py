"""Synthetic pixel data: a thorax/abdomen CT, a head MR, a chest CR, a colour capture, a cine.

Pure numpy and deterministic (fixed seeds, no randomness at call time). Each generator
returns stored values in the dtype its series declares. `NONSQUARE_MARKER` and
`MF_DOT_RADIUS` say where the shapes tests look for are.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class MarkerSpec:
    """Where the orientation marker of the non-square series is (pixel rows/columns,
    half-open ranges [start, stop)), and its stored value. Background is much darker."""

    square_rows: tuple[int, int]
    square_cols: tuple[int, int]
    l_vertical_rows: tuple[int, int]
    l_vertical_cols: tuple[int, int]
    l_horizontal_rows: tuple[int, int]
    l_horizontal_cols: tuple[int, int]
    value: int


NONSQUARE_MARKER = MarkerSpec(
    square_rows=(24, 72),
    square_cols=(40, 120),
    l_vertical_rows=(150, 230),
    l_vertical_cols=(400, 412),
    l_horizontal_rows=(218, 230),
    l_horizontal_cols=(400, 470),
    value=3000,
)
"""The bright square is in the top-left quadrant only; the 'L' is in the bottom-right."""

MF_DOT_RADIUS = 12
"""In `mf24`, frame k (0-based) has a bright dot centred at row 128, column 20 + 9*k."""


@lru_cache(maxsize=1)
def _grid512() -> tuple[np.ndarray, np.ndarray]:
    """Row/column coordinates in mm-ish units centred on the image, as 1-D arrays."""
    c = np.arange(512, dtype=np.float32) - 255.5
    return c, c


@lru_cache(maxsize=1)
def _noise512() -> np.ndarray:
    rng = np.random.default_rng(1082)
    return rng.integers(-12, 13, size=(512, 512), dtype=np.int16)


def _ellipse(cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    ys, xs = _grid512()
    dy = ((ys - cy) / ry) ** 2
    dx = ((xs - cx) / rx) ** 2
    return np.add.outer(dy, dx) < 1.0


@lru_cache(maxsize=512)
def ct_slice_hu(z_mm: int) -> np.ndarray:
    """A 512x512 int16 HU slice of a synthetic thorax/abdomen at z (mm, -160..160)."""
    t = (z_mm + 160) / 320.0  # 0 (feet) .. 1 (head)
    img = np.full((512, 512), -1000, dtype=np.int16)
    bw = 200 + 20 * np.sin(np.pi * t)  # body half width
    bh = 135 + 12 * np.sin(np.pi * t * 1.3)
    body = _ellipse(10, 0, bh, bw)
    img[body] = -100  # fat
    img[_ellipse(12, 0, bh - 14, bw - 16)] = 40  # soft tissue
    ribs = _ellipse(12, 0, bh - 26, bw - 28) & ~_ellipse(12, 0, bh - 36, bw - 38)
    lung_size = max(0.0, np.sin(np.pi * np.clip((t - 0.35) / 0.6, 0, 1)))
    if t > 0.45:
        img[ribs] = 750
    if lung_size > 0.05:
        ly, lx = (bh - 50) * lung_size + 10, 70 * lung_size + 8
        img[_ellipse(0, -85, ly, lx)] = -850
        img[_ellipse(0, 85, ly, lx)] = -850
        hr = 45 * lung_size
        if hr > 5:
            img[_ellipse(-5, 15, hr, hr * 1.2)] = 180  # heart with contrast
    else:
        lr = 90 * (1 - t / 0.35) + 10 if t < 0.35 else 10
        img[_ellipse(-10, -60, lr * 0.8, lr)] = 60  # liver
        img[_ellipse(20, 80, 25, 25)] = 30  # kidney
    img[_ellipse(-10, 0, 14, 14)] = 200  # aorta
    img[_ellipse(bh - 45, 0, 24, 22)] = 900  # vertebra
    img[_ellipse(bh - 45, 0, 10, 9)] = 30  # canal
    noise = np.roll(_noise512(), (z_mm * 7) % 512, axis=1)
    out = img + np.where(img > -990, noise, noise // 4)
    out.setflags(write=False)
    return out


def mr_slice(k: int, n: int) -> np.ndarray:
    """A 256x256 uint16 synthetic head slice."""
    t = (k + 0.5) / n
    c = np.arange(256, dtype=np.float32) - 127.5
    s = np.sin(np.pi * t)
    r = np.add.outer((c / (100 * s + 10)) ** 2, (c / (80 * s + 8)) ** 2)
    img = np.zeros((256, 256), dtype=np.float32)
    img[r < 1.0] = 900  # scalp
    img[r < 0.85] = 60  # skull (dark)
    img[r < 0.75] = 1400  # brain
    v = np.add.outer((c / 25) ** 2, ((np.abs(c) - 18) / 8) ** 2)
    img[(v < 1.0) & (r < 0.75)] = 2800  # ventricles (bright on T2)
    img += 40 * np.sin(np.add.outer(c, c) / 9.0)
    return np.clip(img, 0, 4095).astype(np.uint16)


def nonsquare_pixels() -> np.ndarray:
    """256x512 uint16 ramp with the `NONSQUARE_MARKER` shapes, to check orientation and aspect."""
    m = NONSQUARE_MARKER
    img = np.tile(np.linspace(200, 1200, 512, dtype=np.float32), (256, 1)).astype(np.uint16)
    img[slice(*m.square_rows), slice(*m.square_cols)] = m.value
    img[slice(*m.l_vertical_rows), slice(*m.l_vertical_cols)] = m.value
    img[slice(*m.l_horizontal_rows), slice(*m.l_horizontal_cols)] = m.value
    return img


def cr_pixels() -> np.ndarray:
    """640x512 chest radiograph, MONOCHROME1: high values are dark (air), low are bright."""
    y = np.arange(640, dtype=np.float32)[:, None] - 330
    x = np.arange(512, dtype=np.float32)[None, :] - 255.5
    att = np.zeros((640, 512), dtype=np.float32)
    att += 1500 * (((y / 290) ** 2 + (x / 230) ** 2) < 1)  # body
    lungs = (((y + 20) / 210) ** 2 + ((np.abs(x) - 95) / 75) ** 2) < 1
    att -= 900 * lungs
    att += 1600 * ((np.abs(x) < 18) & (np.abs(y) < 300))  # spine
    for k in range(8):  # ribs
        att += 500 * (np.abs(y + 200 - 50 * k - 0.002 * x**2) < 6) * (np.abs(x) < 190)
    att += 2000 * (((y + 10) / 60) ** 2 + ((x + 30) / 70) ** 2 < 1)  # heart
    return np.clip(3800 - att, 0, 4095).astype(np.uint16)


def rgb_pixels() -> np.ndarray:
    """256x384x3 uint8 colour bars over red and blue ramps, to check channel order."""
    img = np.zeros((256, 384, 3), dtype=np.uint8)
    bars = [
        (255, 255, 255),
        (255, 255, 0),
        (0, 255, 255),
        (0, 255, 0),
        (255, 0, 255),
        (255, 0, 0),
        (0, 0, 255),
        (0, 0, 0),
    ]
    for i, col in enumerate(bars):
        img[:160, i * 48 : (i + 1) * 48] = col
    ramp = np.linspace(0, 255, 384).astype(np.uint8)
    img[160:208, :, 0] = ramp
    img[208:, :, 2] = ramp[::-1]
    img[208:, :, 1] = 128
    return img


def mf_pixels(frames: int) -> np.ndarray:
    """(frames, 256, 256) uint16 cine: a diagonal ramp with a dot moving right (`MF_DOT_RADIUS`)."""
    c = np.arange(256, dtype=np.float32)
    base = (np.add.outer(c, c) * 4).astype(np.uint16)
    out = np.repeat(base[None, :, :], frames, axis=0)
    for k in range(frames):
        d = np.add.outer((c - 128) ** 2, (c - (20 + 9 * k)) ** 2) < MF_DOT_RADIUS**2
        out[k][d] = 4000
    return out


def diagonal_ramp_pixels() -> np.ndarray:
    """64x64 uint8 diagonal ramp for the small capture (the hostile series)."""
    c = np.arange(64, dtype=np.uint16)
    return (np.add.outer(c, c) * 2).astype(np.uint8)
