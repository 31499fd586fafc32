"""PixelFormat: what decoding and display need to know about a frame, from its header.

Built from DICOM JSON (WADO-RS metadata / QIDO) or a pydicom dataset through one reader, so
both sources are interpreted alike. ``PixelFormat.pixel_spacing`` is ``(row spacing, column
spacing)`` in mm, i.e. (vertical, horizontal) distance between pixel centres; images are
resized to their physical aspect.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tui.imaging.errors import UndecodableFrame
from tui.imaging.window import Window

__all__ = ["PixelFormat"]

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
