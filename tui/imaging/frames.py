"""Pixel pipeline: one frame's bytes -> numpy array -> windowed 8-bit PIL image.

No network and no Textual here. Everything is synchronous and CPU-bound; the app runs it in a
thread. The hot path (16-bit greyscale) windows through a cached 64 Ki-entry lookup table that
folds the modality LUT (slope/intercept), the VOI window and the inversion into one ``np.take``.

Conventions:

* ``decode_frame`` returns stored values (after BitsStored masking / sign extension):
  ``(rows, cols)`` for greyscale, ``(rows, cols, 3)`` RGB for colour (YBR converted to RGB).
* Windows are in modality units (after RescaleSlope/RescaleIntercept), as in the DICOM header.
* ``PixelFormat.pixel_spacing`` is ``(row spacing, column spacing)`` in mm, i.e. (vertical,
  horizontal) distance between pixel centres; images are resized to their physical aspect.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "CT_PRESETS",
    "FROM_DATA",
    "NATIVE_SYNTAXES",
    "PixelFormat",
    "UndecodableFrame",
    "Window",
    "apply_window",
    "auto_window",
    "decode_frame",
    "display_size",
    "fit",
    "frame_bytes_from_dataset",
    "full_image",
    "preview",
    "render",
    "resolve_preset",
    "window_for",
]

IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BE = "1.2.840.10008.1.2.2"
NATIVE_SYNTAXES = frozenset({IMPLICIT_VR_LE, EXPLICIT_VR_LE, DEFLATED_EXPLICIT_VR_LE, EXPLICIT_VR_BE})
"""Transfer syntaxes whose WADO-RS frame is the raw pixel bytes (deflate applies to the whole
dataset, never to a frame on its own)."""

_ITEM_TAG = b"\xfe\xff\x00\xe0"  # (FFFE,E000) little endian: data is already encapsulated
_MAX_RENDER_SIDE = 8192


class UndecodableFrame(Exception):
    """The frame can't be decoded or rendered locally; ``reason`` says why (one line).

    The app falls back to the server-rendered JPEG when it sees this.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------------
# Window


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


# --------------------------------------------------------------------------------------------
# PixelFormat

_Getter = Callable[[int], list[Any] | None]


def _json_getter(attrs: Mapping[str, Any]) -> _Getter:
    def get(tag: int) -> list[Any] | None:
        elem = attrs.get(f"{tag:08X}")
        if not isinstance(elem, Mapping):
            return None
        value = elem.get("Value")
        if not isinstance(value, list) or not value:
            return None
        if elem.get("vr") == "SQ":
            return [_json_getter(item) for item in value if isinstance(item, Mapping)]
        return value

    return get


def _dataset_getter(ds: Any) -> _Getter:
    def get(tag: int) -> list[Any] | None:
        try:
            elem = ds.get(tag)
        except Exception:
            return None
        if elem is None:
            return None
        value = elem.value
        if elem.VR == "SQ":
            return [_dataset_getter(item) for item in value] or None
        if value is None or value == "" or (isinstance(value, bytes) and not value):
            return None
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            return [value]
        return list(value) or None

    return get


def _num(value: Any) -> float | None:
    try:
        f = float(str(value).strip()) if isinstance(value, str | bytes) else float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _first_int(get: _Getter, tag: int, default: int | None = None) -> int | None:
    vals = get(tag)
    if not vals:
        return default
    f = _num(vals[0])
    return default if f is None else int(f)


def _floats(get: _Getter, tag: int) -> tuple[float, ...]:
    vals = get(tag) or []
    out: list[float] = []
    for v in vals:
        # A DS value may arrive as one backslash-separated string from some servers.
        parts = v.split("\\") if isinstance(v, str) else [v]
        for p in parts:
            f = _num(p)
            if f is not None:
                out.append(f)
    return tuple(out)


def _text(get: _Getter, tag: int) -> str | None:
    vals = get(tag)
    if not vals or vals[0] is None:
        return None
    return str(vals[0]).strip() or None


def _functional_group_items(get: _Getter) -> list[_Getter]:
    """Shared functional groups first, then the first frame's per-frame groups (enhanced IODs)."""
    out: list[_Getter] = []
    for tag in (0x52009229, 0x52009230):
        items = get(tag)
        if items:
            out.append(items[0])
    return out


def _from_getter(get: _Getter, transfer_syntax: str | None) -> PixelFormat:
    rows = _first_int(get, 0x00280010)
    cols = _first_int(get, 0x00280011)
    if not rows or not cols or rows <= 0 or cols <= 0:
        raise UndecodableFrame("no Rows/Columns: the instance has no usable image attributes")
    bits_allocated = _first_int(get, 0x00280100, 16) or 16
    bits_stored = _first_int(get, 0x00280101, bits_allocated) or bits_allocated
    spp = _first_int(get, 0x00280002, 1) or 1
    photometric = _text(get, 0x00280004) or ("RGB" if spp == 3 else "MONOCHROME2")

    slope = _floats(get, 0x00281053)
    intercept = _floats(get, 0x00281052)
    centers = _floats(get, 0x00281050)
    widths = _floats(get, 0x00281051)
    explanations = tuple(str(v) for v in (get(0x00281055) or []))
    voi_function = _text(get, 0x00281056)
    spacing = _floats(get, 0x00280030) or _floats(get, 0x00181164)
    for group in _functional_group_items(get):
        seq = group(0x00289110)  # PixelMeasuresSequence
        if not spacing and seq:
            spacing = _floats(seq[0], 0x00280030)
        seq = group(0x00289145)  # PixelValueTransformationSequence
        if not slope and seq:
            slope = _floats(seq[0], 0x00281053)
            intercept = _floats(seq[0], 0x00281052)
        seq = group(0x00289132)  # FrameVOILUTSequence
        if not centers and seq:
            centers = _floats(seq[0], 0x00281050)
            widths = _floats(seq[0], 0x00281051)
            explanations = tuple(str(v) for v in (seq[0](0x00281055) or []))
            voi_function = voi_function or _text(seq[0], 0x00281056)
    pixel_spacing: tuple[float, float] | None = None
    if len(spacing) >= 2 and spacing[0] > 0 and spacing[1] > 0:
        pixel_spacing = (spacing[0], spacing[1])
    else:
        ratio = _floats(get, 0x00280034)  # PixelAspectRatio: vertical \ horizontal
        if len(ratio) >= 2 and ratio[0] > 0 and ratio[1] > 0:
            pixel_spacing = (ratio[0], ratio[1])
    n = min(len(centers), len(widths))
    return PixelFormat(
        rows=rows,
        columns=cols,
        samples_per_pixel=spp,
        photometric=photometric.upper(),
        bits_allocated=bits_allocated,
        bits_stored=bits_stored,
        pixel_representation=_first_int(get, 0x00280103, 0) or 0,
        planar_configuration=_first_int(get, 0x00280006, 0) or 0,
        number_of_frames=max(1, _first_int(get, 0x00280008, 1) or 1),
        rescale_slope=slope[0] if slope and slope[0] != 0 else 1.0,
        rescale_intercept=intercept[0] if intercept else 0.0,
        window_centers=centers[:n],
        window_widths=widths[:n],
        window_explanations=explanations,
        voi_lut_function=(voi_function or "LINEAR").upper(),
        pixel_spacing=pixel_spacing,
        transfer_syntax_uid=transfer_syntax or _text(get, 0x00020010),
    )


@dataclass(frozen=True)
class PixelFormat:
    """What is needed to decode and display one frame (Image Pixel + VOI/modality modules)."""

    rows: int
    columns: int
    samples_per_pixel: int = 1
    photometric: str = "MONOCHROME2"
    bits_allocated: int = 16
    bits_stored: int = 16
    pixel_representation: int = 0
    planar_configuration: int = 0
    number_of_frames: int = 1
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    window_centers: tuple[float, ...] = ()
    window_widths: tuple[float, ...] = ()
    window_explanations: tuple[str, ...] = ()
    voi_lut_function: str = "LINEAR"
    pixel_spacing: tuple[float, float] | None = None  # (row spacing, column spacing)
    transfer_syntax_uid: str | None = None

    @classmethod
    def from_dicom_json(
        cls, attrs: Mapping[str, Any], transfer_syntax: str | None = None
    ) -> PixelFormat:
        """Build from DICOM JSON (``{"00280010": {"vr": "US", "Value": [512]}, ...}``).

        Reads the enhanced multi-frame functional groups (shared, then first frame) when the
        top-level spacing/rescale/window are absent. Raises ``UndecodableFrame`` without
        Rows/Columns.
        """
        return _from_getter(_json_getter(attrs), transfer_syntax)

    @classmethod
    def from_dataset(cls, ds: Any, transfer_syntax: str | None = None) -> PixelFormat:
        """Build from a pydicom ``Dataset`` (transfer syntax from its file meta if present)."""
        if transfer_syntax is None:
            meta = getattr(ds, "file_meta", None)
            ts = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
            transfer_syntax = str(ts) if ts else None
        return _from_getter(_dataset_getter(ds), transfer_syntax)

    @property
    def is_color(self) -> bool:
        """True for three-sample (RGB/YBR) images."""
        return self.samples_per_pixel == 3

    @property
    def is_signed(self) -> bool:
        """True when PixelRepresentation is 1 (two's complement)."""
        return self.pixel_representation == 1

    @property
    def frame_length(self) -> int:
        """Bytes of one natively encoded frame (without the odd-length padding byte)."""
        pixels = self.rows * self.columns
        if self.bits_allocated == 1:
            return (pixels * self.samples_per_pixel + 7) // 8
        if self.photometric == "YBR_FULL_422":
            return pixels * 2 * (self.bits_allocated // 8)
        return pixels * self.samples_per_pixel * (self.bits_allocated // 8)

    @property
    def windows(self) -> tuple[Window, ...]:
        """The header's VOI windows (widths <= 0 dropped)."""
        out = []
        for i, (c, w) in enumerate(zip(self.window_centers, self.window_widths, strict=False)):
            if w > 0:
                expl = self.window_explanations[i] if i < len(self.window_explanations) else ""
                out.append(Window(c, w, self.voi_lut_function, expl))
        return tuple(out)

    @property
    def pixel_aspect(self) -> float:
        """Height of one pixel over its width (1.0 when the spacing is unknown)."""
        if self.pixel_spacing is None:
            return 1.0
        return self.pixel_spacing[0] / self.pixel_spacing[1]


# --------------------------------------------------------------------------------------------
# Decoding


def _normalise_bits(arr: np.ndarray, fmt: PixelFormat) -> np.ndarray:
    """Mask unused high bits (unsigned) or sign-extend from BitsStored (signed), in place."""
    bits = arr.dtype.itemsize * 8
    stored = fmt.bits_stored
    if arr.dtype.kind not in "iu" or not 0 < stored < bits:
        return arr
    if arr.dtype.kind == "i":
        shift = bits - stored
        arr <<= shift
        arr >>= shift  # arithmetic shift on signed dtypes
    else:
        arr &= (1 << stored) - 1
    return arr


def _decode_native_fast(data: bytes, fmt: PixelFormat, ts: str) -> np.ndarray | None:
    """np.frombuffer path for the common native cases; None when pydicom should handle it."""
    if fmt.bits_allocated not in (8, 16, 32) or fmt.photometric == "YBR_FULL_422":
        return None
    kind = "i" if fmt.is_signed else "u"
    order = ">" if ts == EXPLICIT_VR_BE and fmt.bits_allocated > 8 else "<"
    dtype = np.dtype(f"{order}{kind}{fmt.bits_allocated // 8}")
    n = fmt.rows * fmt.columns * fmt.samples_per_pixel
    arr: np.ndarray = np.frombuffer(data, dtype=dtype, count=n)
    # astype/copy: writeable, little endian, and detached from the caller's buffer
    arr = arr.astype(dtype.newbyteorder("<")) if order == ">" else arr.copy()
    if fmt.samples_per_pixel == 1:
        return _normalise_bits(arr.reshape(fmt.rows, fmt.columns), fmt)
    if fmt.planar_configuration == 1:
        arr = arr.reshape(fmt.samples_per_pixel, fmt.rows, fmt.columns).transpose(1, 2, 0)
        arr = np.ascontiguousarray(arr)
    else:
        arr = arr.reshape(fmt.rows, fmt.columns, fmt.samples_per_pixel)
    arr = _normalise_bits(arr, fmt)
    if fmt.photometric == "YBR_FULL":
        from pydicom.pixels import convert_color_space

        arr = convert_color_space(arr, "YBR_FULL", "RGB")
    return arr


def _pydicom_options(fmt: PixelFormat) -> dict[str, Any]:
    return {
        "rows": fmt.rows,
        "columns": fmt.columns,
        "samples_per_pixel": fmt.samples_per_pixel,
        "bits_allocated": fmt.bits_allocated,
        "bits_stored": fmt.bits_stored,
        "pixel_representation": fmt.pixel_representation,
        "photometric_interpretation": fmt.photometric,
        "planar_configuration": fmt.planar_configuration,
        "number_of_frames": 1,
        "pixel_keyword": "PixelData",
    }


def _decode_with_pydicom(data: bytes, fmt: PixelFormat, ts: str, native: bool) -> np.ndarray:
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(ts)
    except (NotImplementedError, ValueError, KeyError) as exc:
        raise UndecodableFrame(f"no local decoder for transfer syntax {ts}") from exc
    if not decoder.is_available:
        raise UndecodableFrame(
            f"no decoding plugin installed for transfer syntax {ts} ({decoder.UID.name})"
        )
    src: bytes = data
    if not native and not data.startswith(_ITEM_TAG):
        from pydicom.encaps import encapsulate

        src = encapsulate([data], has_bot=False)
    opts = _pydicom_options(fmt)
    try:
        arr, props = decoder.as_array(src, index=0, **opts)
    except UndecodableFrame:
        raise
    except Exception as exc:  # pydicom/plugins raise a wide variety of errors
        msg = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UndecodableFrame(f"{decoder.UID.name} frame could not be decoded: {msg}") from exc
    arr = np.asarray(arr)
    if fmt.samples_per_pixel == 1 and arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    photometric = str(props.get("photometric_interpretation", fmt.photometric))
    if arr.ndim == 3 and photometric in ("YBR_FULL", "YBR_FULL_422"):
        from pydicom.pixels import convert_color_space

        arr = convert_color_space(arr, "YBR_FULL", "RGB")
    if not arr.flags.writeable:
        arr = arr.copy()
    if native:
        arr = _normalise_bits(arr, fmt)
    return arr


def decode_frame(data: bytes, fmt: PixelFormat, transfer_syntax: str | None) -> np.ndarray:
    """Decode ONE frame's bytes (as WADO-RS frames returns them) to stored values.

    ``data`` is the raw little-endian pixel bytes for native syntaxes, or the compressed
    bitstream (the frame's fragments, concatenated) for encapsulated ones; an already
    encapsulated buffer (starting with an Item tag) is accepted too. ``transfer_syntax`` None
    means native (application/octet-stream) when the length fits, else ``fmt``'s syntax.
    Returns ``(rows, cols)`` or ``(rows, cols, 3)`` RGB. Raises ``UndecodableFrame``.
    """
    data = bytes(data) if not isinstance(data, bytes) else data
    if not data:
        raise UndecodableFrame("empty frame")
    ts = transfer_syntax
    if ts is None:
        if len(data) in (fmt.frame_length, fmt.frame_length + 1):
            ts = EXPLICIT_VR_LE
        elif fmt.transfer_syntax_uid and fmt.transfer_syntax_uid not in NATIVE_SYNTAXES:
            ts = fmt.transfer_syntax_uid
        else:
            ts = EXPLICIT_VR_LE
    ts = ts.strip()
    if fmt.samples_per_pixel not in (1, 3):
        raise UndecodableFrame(f"unsupported SamplesPerPixel {fmt.samples_per_pixel}")

    if ts in NATIVE_SYNTAXES:
        expected = fmt.frame_length
        if len(data) < expected:
            raise UndecodableFrame(
                f"truncated frame: {len(data)} bytes, expected {expected} "
                f"({fmt.rows}x{fmt.columns}x{fmt.samples_per_pixel}, {fmt.bits_allocated} bits)"
            )
        if len(data) > expected + 1:
            raise UndecodableFrame(
                f"wrong frame length: {len(data)} bytes, expected {expected} "
                f"({fmt.rows}x{fmt.columns}x{fmt.samples_per_pixel}, {fmt.bits_allocated} bits)"
            )
        arr = _decode_native_fast(data, fmt, ts)
        if arr is None:
            arr = _decode_with_pydicom(data[:expected], fmt, ts, native=True)
    else:
        arr = _decode_with_pydicom(data, fmt, ts, native=False)

    want = (fmt.rows, fmt.columns) if fmt.samples_per_pixel == 1 else (fmt.rows, fmt.columns, 3)
    if arr.shape != want:
        raise UndecodableFrame(f"decoded shape {arr.shape} does not match {want}")
    return arr


def frame_bytes_from_dataset(ds: Any, index: int = 0) -> tuple[bytes, str]:
    """Return (frame bytes, transfer syntax) of frame ``index`` of a local pydicom dataset.

    Gives what WADO-RS frames would return: the native frame slice, or the compressed frame
    bitstream for encapsulated syntaxes. Used by ``pacs-tui frame`` on local files and tests.
    """
    fmt = PixelFormat.from_dataset(ds)
    ts = fmt.transfer_syntax_uid or EXPLICIT_VR_LE
    if not 0 <= index < fmt.number_of_frames:
        raise UndecodableFrame(f"frame {index} out of range (0..{fmt.number_of_frames - 1})")
    pixel_data = ds.PixelData
    if ts in NATIVE_SYNTAXES:
        n = fmt.frame_length
        if fmt.bits_allocated == 1 and index:
            raise UndecodableFrame("1-bit multi-frame frames are not byte aligned")
        return bytes(pixel_data[index * n : (index + 1) * n]), ts
    from pydicom.encaps import get_frame

    return get_frame(pixel_data, index, number_of_frames=fmt.number_of_frames), ts


# --------------------------------------------------------------------------------------------
# Windowing


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
def _lut(
    dtype: str, slope: float, intercept: float, window: Window, invert: bool
) -> np.ndarray:
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
    lo, hi = sorted((lo * fmt.rescale_slope + fmt.rescale_intercept,
                     hi * fmt.rescale_slope + fmt.rescale_intercept))
    function = fmt.voi_lut_function if fmt.voi_lut_function in ("LINEAR_EXACT", "SIGMOID") else "LINEAR"
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
        lut = _lut(arr.dtype.str.lstrip("<>|="), float(fmt.rescale_slope),
                   float(fmt.rescale_intercept), window, inv)
        idx = arr.view(np.dtype(f"u{arr.dtype.itemsize}"))
        return np.take(lut, idx)
    return _to_uint8(_window_float(_modality(arr, fmt), window), inv)


# --------------------------------------------------------------------------------------------
# Images


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
    arr = decode_frame(data, fmt, ts)
    if window is None:
        window = window_for(fmt, arr, window_index)
    img = _to_image(apply_window(arr, fmt, window, invert))
    dw, dh = display_size(fmt, arr.shape)
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
    arr = decode_frame(data, fmt, ts)
    if window is None:
        window = window_for(fmt, arr, window_index)
    return render(arr, fmt, window, invert)
