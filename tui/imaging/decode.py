"""Decoding: one frame's bytes (as WADO-RS frames returns them) -> numpy stored values.

``decode_frame`` returns stored values (after BitsStored masking / sign extension):
``(rows, cols)`` for greyscale, ``(rows, cols, 3)`` RGB for colour (YBR converted to RGB).
Native syntaxes take a ``np.frombuffer`` fast path; everything else goes to pydicom's decoders.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tui.imaging.errors import UndecodableFrame
from tui.imaging.pixelformat import PixelFormat

__all__ = [
    "NATIVE_SYNTAXES",
    "decode_frame",
    "frame_bytes_from_dataset",
]

IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BE = "1.2.840.10008.1.2.2"
NATIVE_SYNTAXES = frozenset(
    {IMPLICIT_VR_LE, EXPLICIT_VR_LE, DEFLATED_EXPLICIT_VR_LE, EXPLICIT_VR_BE}
)
"""Transfer syntaxes whose WADO-RS frame is the raw pixel bytes (deflate applies to the whole
dataset, never to a frame on its own)."""

_ITEM_TAG = b"\xfe\xff\x00\xe0"  # (FFFE,E000) little endian: data is already encapsulated


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
