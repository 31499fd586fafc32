"""Tests for tui.imaging: decode, modality LUT, VOI window, colour, aspect, errors.

All datasets are synthetic and built here. Windowed output is compared with a reference computed
independently with float64 numpy (rescale, DICOM PS3.3 C.11.2.1.2 formula, round half up).
Tolerance: at most 1 grey level for windowing (float32 vs float64 rounding at .5 boundaries);
2 levels for YBR->RGB (integer colour conversion), lossy JPEG compared with PIL's own decode.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_frames, get_frame
from pydicom.pixels import convert_color_space
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

from tui.imaging.decode import decode_frame, frame_bytes_from_dataset
from tui.imaging.errors import UndecodableFrame
from tui.imaging.frames import display_size, fit, full_image, preview, render
from tui.imaging.pixelformat import PixelFormat
from tui.imaging.window import (
    CT_PRESETS,
    Window,
    apply_window,
    auto_window,
    resolve_preset,
    window_for,
)

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
TOL = 1  # grey levels, windowing
COLOR_TOL = 2  # grey levels, YBR -> RGB


# ------------------------------------------------------------------ helpers (independent of code)


def make_ds(
    pixels: bytes,
    rows: int,
    cols: int,
    *,
    bits: int = 16,
    stored: int | None = None,
    signed: bool = False,
    photometric: str = "MONOCHROME2",
    planar: int = 0,
    frames: int = 1,
    slope: float | None = None,
    intercept: float | None = None,
    center: float | list[float] | None = None,
    width: float | list[float] | None = None,
    spacing: tuple[float, float] | None = None,
) -> Dataset:
    """A minimal dataset with the Image Pixel module and raw little-endian PixelData."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPInstanceUID = "1.2.3.4"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1 if photometric.startswith("MONO") else 3
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = bits
    ds.BitsStored = stored or bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(signed)
    if ds.SamplesPerPixel == 3:
        ds.PlanarConfiguration = planar
    if frames > 1:
        ds.NumberOfFrames = frames
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept
    if center is not None:
        ds.WindowCenter = center
        ds.WindowWidth = width
    if spacing is not None:
        ds.PixelSpacing = list(spacing)
    ds.PixelData = pixels
    return ds


def ref_linear(
    stored: np.ndarray, slope: float, intercept: float, c: float, w: float, invert: bool = False
) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 LINEAR, computed in float64, to uint8 (round half up)."""
    x = stored.astype(np.float64) * slope + intercept
    y = np.where(
        x <= c - 0.5 - (w - 1) / 2,
        0.0,
        np.where(x > c - 0.5 + (w - 1) / 2, 255.0, ((x - (c - 0.5)) / (w - 1) + 0.5) * 255.0),
    )
    out = np.floor(y + 0.5).astype(np.uint8)
    return 255 - out if invert else out


def assert_close(a: np.ndarray, b: np.ndarray, tol: int = TOL) -> None:
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = np.abs(a.astype(np.int32) - b.astype(np.int32))
    assert diff.max() <= tol, (
        f"max diff {diff.max()} at {np.unravel_index(diff.argmax(), diff.shape)}"
    )


def ramp16(rows: int = 16, cols: int = 24, lo: int = -2048, hi: int = 2047) -> np.ndarray:
    return np.linspace(lo, hi, rows * cols).round().astype(np.int64).reshape(rows, cols)


# ------------------------------------------------------------------ greyscale, native


def test_unsigned_16_masks_unused_high_bits_and_windows() -> None:
    values = np.arange(0, 4096, 4096 // (20 * 30) + 1)[: 20 * 30]
    values = np.resize(values, 20 * 30).reshape(20, 30).astype(np.uint16)
    garbage = values | 0xF000  # overlay bits above BitsStored=12 must be ignored
    ds = make_ds(
        garbage.tobytes(),
        20,
        30,
        stored=12,
        slope=2.0,
        intercept=-1000.0,
        center=1000.0,
        width=3000.0,
    )
    fmt = PixelFormat.from_dataset(ds)
    arr = decode_frame(ds.PixelData, fmt, EXPLICIT_LE)
    assert arr.shape == (20, 30)
    np.testing.assert_array_equal(arr, values)
    out = apply_window(arr, fmt)
    assert out.dtype == np.uint8
    assert_close(out, ref_linear(values, 2.0, -1000.0, 1000.0, 3000.0))


def test_signed_12_in_16_sign_extends_negative_values() -> None:
    values = ramp16(lo=-2048, hi=2047)
    raw = (values & 0x0FFF).astype(np.uint16)  # 12-bit two's complement, upper bits zero
    ds = make_ds(
        raw.tobytes(),
        16,
        24,
        stored=12,
        signed=True,
        slope=1.0,
        intercept=-24.0,
        center=40.0,
        width=400.0,
    )
    fmt = PixelFormat.from_dataset(ds)
    arr = decode_frame(ds.PixelData, fmt, IMPLICIT_LE)
    assert arr.dtype.kind == "i"
    np.testing.assert_array_equal(arr, values)
    assert arr.min() == -2048
    assert_close(apply_window(arr, fmt), ref_linear(values, 1.0, -24.0, 40.0, 400.0))


def test_signed_16_full_range() -> None:
    values = ramp16(lo=-32768, hi=32767).astype(np.int16)
    ds = make_ds(values.tobytes(), 16, 24, signed=True, center=0.0, width=20000.0)
    fmt = PixelFormat.from_dataset(ds)
    arr = decode_frame(ds.PixelData, fmt, EXPLICIT_LE)
    np.testing.assert_array_equal(arr, values)
    assert_close(apply_window(arr, fmt), ref_linear(values, 1.0, 0.0, 0.0, 20000.0))


@pytest.mark.parametrize("signed", [False, True])
def test_8_bit(signed: bool) -> None:
    dtype = np.int8 if signed else np.uint8
    values = np.arange(256, dtype=np.uint8).reshape(16, 16).view(dtype)
    ds = make_ds(values.tobytes(), 16, 16, bits=8, signed=signed, center=10.0, width=100.0)
    fmt = PixelFormat.from_dataset(ds)
    arr = decode_frame(ds.PixelData, fmt, EXPLICIT_LE)
    np.testing.assert_array_equal(arr, values)
    assert_close(apply_window(arr, fmt), ref_linear(values, 1.0, 0.0, 10.0, 100.0))


def test_32_bit_float_path() -> None:
    values = np.arange(12 * 10, dtype=np.uint32).reshape(12, 10) * 1000
    ds = make_ds(
        values.tobytes(), 12, 10, bits=32, slope=0.5, intercept=3.0, center=30000.0, width=40000.0
    )
    fmt = PixelFormat.from_dataset(ds)
    arr = decode_frame(ds.PixelData, fmt, EXPLICIT_LE)
    assert_close(apply_window(arr, fmt), ref_linear(values, 0.5, 3.0, 30000.0, 40000.0))


def test_odd_length_padding_byte_is_accepted() -> None:
    values = np.arange(15, dtype=np.uint8).reshape(3, 5)
    fmt = PixelFormat(rows=3, columns=5, bits_allocated=8, bits_stored=8)
    arr = decode_frame(values.tobytes() + b"\x00", fmt, EXPLICIT_LE)
    np.testing.assert_array_equal(arr, values)


def test_monochrome1_is_inverted_and_user_invert_toggles() -> None:
    values = ramp16(lo=0, hi=4095).astype(np.uint16)
    ds = make_ds(
        values.tobytes(), 16, 24, stored=12, photometric="MONOCHROME1", center=2048.0, width=4096.0
    )
    fmt = PixelFormat.from_dataset(ds)
    arr = decode_frame(ds.PixelData, fmt, EXPLICIT_LE)
    out = apply_window(arr, fmt)
    assert_close(out, ref_linear(values, 1.0, 0.0, 2048.0, 4096.0, invert=True))
    assert out[0, 0] == 255 and out[-1, -1] == 0  # low values are white in MONOCHROME1
    assert_close(apply_window(arr, fmt, invert=True), ref_linear(values, 1.0, 0.0, 2048.0, 4096.0))
    mono2 = PixelFormat.from_dataset(make_ds(values.tobytes(), 16, 24, stored=12))
    w = Window(2048.0, 4096.0)
    np.testing.assert_array_equal(
        apply_window(arr, mono2, w, invert=True), 255 - apply_window(arr, mono2, w)
    )


def test_multiframe_native_pick_frame_k() -> None:
    frames = [ramp16(lo=-1000 * (k + 1), hi=1000 * (k + 1)).astype(np.int16) for k in range(4)]
    pixel_data = b"".join(f.tobytes() for f in frames)
    ds = make_ds(pixel_data, 16, 24, signed=True, frames=4, center=0.0, width=3000.0)
    fmt = PixelFormat.from_dataset(ds)
    assert fmt.number_of_frames == 4
    k = 2
    n = 16 * 24 * 2
    arr = decode_frame(ds.PixelData[k * n : (k + 1) * n], fmt, EXPLICIT_LE)
    np.testing.assert_array_equal(arr, frames[k])
    assert_close(apply_window(arr, fmt), ref_linear(frames[k], 1.0, 0.0, 0.0, 3000.0))
    data, ts = frame_bytes_from_dataset(ds, 3)
    np.testing.assert_array_equal(decode_frame(data, fmt, ts), frames[3])


# ------------------------------------------------------------------ RLE and JPEG


def test_rle_signed_12_bit() -> None:
    values = ramp16(rows=32, cols=40, lo=-2048, hi=2047).astype(np.int16)
    ds = make_ds(
        values.tobytes(),
        32,
        40,
        stored=12,
        signed=True,
        slope=1.0,
        intercept=-1024.0,
        center=-600.0,
        width=1500.0,
    )
    ds.compress(RLELossless, generate_instance_uid=False)
    fmt = PixelFormat.from_dataset(ds)
    assert fmt.transfer_syntax_uid == RLELossless
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    arr = decode_frame(frame, fmt, RLELossless)
    np.testing.assert_array_equal(arr, values)
    assert_close(apply_window(arr, fmt), ref_linear(values, 1.0, -1024.0, -600.0, 1500.0))
    # An already-encapsulated buffer (item tags) is accepted too.
    np.testing.assert_array_equal(decode_frame(ds.PixelData, fmt, RLELossless), values)


def test_rle_multiframe_pick_frame_k() -> None:
    frames = [(np.arange(20 * 12).reshape(20, 12) * (k + 1)).astype(np.uint16) for k in range(3)]
    ds = make_ds(b"".join(f.tobytes() for f in frames), 20, 12, frames=3)
    ds.compress(RLELossless, generate_instance_uid=False)
    fmt = PixelFormat.from_dataset(ds)
    for k in range(3):
        frame = get_frame(ds.PixelData, k, number_of_frames=3)
        np.testing.assert_array_equal(decode_frame(frame, fmt, RLELossless), frames[k])


def test_rle_rgb_and_ybr_full() -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (18, 26, 3), dtype=np.uint8)
    ds = make_ds(rgb.tobytes(), 18, 26, bits=8, photometric="RGB")
    ds.compress(RLELossless, generate_instance_uid=False)
    fmt = PixelFormat.from_dataset(ds)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    np.testing.assert_array_equal(decode_frame(frame, fmt, RLELossless), rgb)

    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    ds = make_ds(ybr.tobytes(), 18, 26, bits=8, photometric="YBR_FULL")
    ds.compress(RLELossless, generate_instance_uid=False)
    fmt = PixelFormat.from_dataset(ds)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    assert_close(decode_frame(frame, fmt, RLELossless), rgb, COLOR_TOL)


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def test_jpeg_baseline_grey_and_colour_match_pil_decode() -> None:
    yy, xx = np.mgrid[0:48, 0:64]
    grey = (xx * 3 + yy).astype(np.uint8)  # smooth: chroma upsamplers agree
    data = _jpeg(Image.fromarray(grey, "L"))
    fmt = PixelFormat(rows=48, columns=64, bits_allocated=8, bits_stored=8)
    arr = decode_frame(data, fmt, JPEG_BASELINE)
    assert_close(arr, np.asarray(Image.open(io.BytesIO(data))), 2)

    rgb = np.stack([grey, 255 - grey, (yy * 5).astype(np.uint8)], axis=-1)
    data = _jpeg(Image.fromarray(rgb, "RGB"))
    fmt = PixelFormat(
        rows=48,
        columns=64,
        samples_per_pixel=3,
        photometric="YBR_FULL_422",
        bits_allocated=8,
        bits_stored=8,
    )
    arr = decode_frame(data, fmt, JPEG_BASELINE)
    assert arr.shape == (48, 64, 3)
    assert_close(arr, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), 3)
    assert preview(data, fmt, JPEG_BASELINE).mode == "RGB"


# ------------------------------------------------------------------ colour, native


@pytest.mark.parametrize("planar", [0, 1])
def test_native_rgb_planar(planar: int) -> None:
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (10, 14, 3), dtype=np.uint8)
    raw = rgb.transpose(2, 0, 1).tobytes() if planar else rgb.tobytes()
    ds = make_ds(raw, 10, 14, bits=8, photometric="RGB", planar=planar)
    fmt = PixelFormat.from_dataset(ds)
    arr = decode_frame(ds.PixelData, fmt, EXPLICIT_LE)
    np.testing.assert_array_equal(arr, rgb)
    img = render(arr, fmt)
    assert img.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(img), rgb)
    np.testing.assert_array_equal(apply_window(arr, fmt, invert=True), 255 - rgb)


@pytest.mark.parametrize("planar", [0, 1])
def test_native_ybr_full_planar(planar: int) -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (10, 14, 3), dtype=np.uint8)
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    raw = ybr.transpose(2, 0, 1).tobytes() if planar else ybr.tobytes()
    ds = make_ds(raw, 10, 14, bits=8, photometric="YBR_FULL", planar=planar)
    fmt = PixelFormat.from_dataset(ds)
    assert_close(decode_frame(ds.PixelData, fmt, EXPLICIT_LE), rgb, COLOR_TOL)


def test_native_ybr_full_422() -> None:
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (8, 5, 3), dtype=np.uint8).repeat(2, axis=1)  # chroma pairs equal
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL").astype(np.uint8)
    pairs = ybr.reshape(8, 5, 2, 3)
    raw = np.stack(
        [pairs[:, :, 0, 0], pairs[:, :, 1, 0], pairs[:, :, 0, 1], pairs[:, :, 0, 2]], axis=-1
    ).astype(np.uint8)  # Y0 Y1 Cb Cr
    fmt = PixelFormat(
        rows=8,
        columns=10,
        samples_per_pixel=3,
        photometric="YBR_FULL_422",
        bits_allocated=8,
        bits_stored=8,
    )
    assert fmt.frame_length == 8 * 10 * 2
    assert_close(decode_frame(raw.tobytes(), fmt, EXPLICIT_LE), rgb, COLOR_TOL)


# ------------------------------------------------------------------ VOI functions and windows


def test_linear_exact_and_sigmoid() -> None:
    values = ramp16(lo=-500, hi=500)
    x = values.astype(np.float64)
    c, w = 20.0, 300.0
    fmt = PixelFormat(rows=16, columns=24, pixel_representation=1)
    exact = np.where(x <= c - w / 2, 0.0, np.where(x > c + w / 2, 255.0, ((x - c) / w + 0.5) * 255))
    out = apply_window(values.astype(np.int16), fmt, Window(c, w, "LINEAR_EXACT"))
    assert_close(out, np.floor(exact + 0.5).astype(np.uint8))
    sig = 255.0 / (1 + np.exp(-4 * (x - c) / w))
    out = apply_window(values.astype(np.int16), fmt, Window(c, w, "SIGMOID"))
    assert_close(out, np.floor(sig + 0.5).astype(np.uint8))


def test_header_voi_function_and_multiple_windows() -> None:
    attrs = {
        "00280010": {"vr": "US", "Value": [4]},
        "00280011": {"vr": "US", "Value": [6]},
        "00280100": {"vr": "US", "Value": [16]},
        "00280101": {"vr": "US", "Value": [12]},
        "00280103": {"vr": "US", "Value": [1]},
        "00280004": {"vr": "CS", "Value": ["MONOCHROME2"]},
        "00281050": {"vr": "DS", "Value": [40, "400"]},
        "00281051": {"vr": "DS", "Value": ["80", 1800.0]},
        "00281055": {"vr": "LO", "Value": ["BRAIN", "BONE"]},
        "00281056": {"vr": "CS", "Value": ["SIGMOID"]},
        "00281052": {"vr": "DS", "Value": ["-1024"]},
        "00281053": {"vr": "DS", "Value": [1]},
        "00280030": {"vr": "DS", "Value": [0.5, 0.25]},
        "00280008": {"vr": "IS", "Value": ["3"]},
    }
    fmt = PixelFormat.from_dicom_json(attrs, transfer_syntax=EXPLICIT_LE)
    assert (fmt.rows, fmt.columns, fmt.bits_stored, fmt.pixel_representation) == (4, 6, 12, 1)
    assert fmt.number_of_frames == 3 and fmt.rescale_intercept == -1024.0
    assert fmt.pixel_spacing == (0.5, 0.25) and fmt.pixel_aspect == 2.0
    arr = np.zeros((4, 6), np.int16)
    assert window_for(fmt, arr) == Window(40.0, 80.0, "SIGMOID", "BRAIN")
    assert window_for(fmt, arr, 1) == Window(400.0, 1800.0, "SIGMOID", "BONE")
    assert window_for(fmt, arr, 2) == window_for(fmt, arr, 0)  # cycles


def test_from_dicom_json_functional_groups_and_missing_rows() -> None:
    attrs = {
        "00280010": {"vr": "US", "Value": [2]},
        "00280011": {"vr": "US", "Value": [2]},
        "52009229": {
            "vr": "SQ",
            "Value": [
                {
                    "00289110": {
                        "vr": "SQ",
                        "Value": [{"00280030": {"vr": "DS", "Value": [1.0, 2.0]}}],
                    },
                    "00289145": {
                        "vr": "SQ",
                        "Value": [
                            {
                                "00281053": {"vr": "DS", "Value": [2]},
                                "00281052": {"vr": "DS", "Value": [-100]},
                            }
                        ],
                    },
                    "00289132": {
                        "vr": "SQ",
                        "Value": [
                            {
                                "00281050": {"vr": "DS", "Value": [50]},
                                "00281051": {"vr": "DS", "Value": [350]},
                            }
                        ],
                    },
                }
            ],
        },
    }
    fmt = PixelFormat.from_dicom_json(attrs)
    assert fmt.pixel_spacing == (1.0, 2.0)
    assert (fmt.rescale_slope, fmt.rescale_intercept) == (2.0, -100.0)
    assert fmt.windows == (Window(50.0, 350.0),)
    with pytest.raises(UndecodableFrame, match="Rows"):
        PixelFormat.from_dicom_json({"00280010": {"vr": "US"}})


def test_auto_window_from_data_and_flat_image() -> None:
    values = ramp16(rows=40, cols=50, lo=0, hi=3999).astype(np.uint16)
    fmt = PixelFormat(rows=40, columns=50, rescale_intercept=-1000.0)
    w = auto_window(values, fmt)
    assert w.explanation == "from data"
    assert -1000 <= w.low <= -950 and 2950 <= w.high <= 3000
    out = apply_window(values, fmt)  # no header window -> from data
    assert out.min() == 0 and out.max() == 255
    assert np.all(np.diff(out.ravel().astype(int)) >= 0)
    flat = np.full((8, 8), 7, np.uint16)
    out = apply_window(flat, PixelFormat(rows=8, columns=8))
    assert out.dtype == np.uint8 and len(np.unique(out)) == 1
    assert auto_window(flat, PixelFormat(rows=8, columns=8)).width >= 1
    assert (
        np.unique(
            apply_window(flat, PixelFormat(rows=8, columns=8, photometric="MONOCHROME1"))
        ).size
        == 1
    )
    floats = np.full((4, 4), np.nan, np.float32)
    auto_window(floats, PixelFormat(rows=4, columns=4))  # no crash


def test_window_shift_and_presets() -> None:
    w = Window(40, 80)
    assert w.shift(10, 20) == Window(50, 100)
    assert w.shift(dw=-500).width == 1.0
    assert (w.low, w.high) == (0.0, 80.0)
    assert CT_PRESETS["brain"] == Window(40, 80, explanation="brain")
    assert (CT_PRESETS["lung"].center, CT_PRESETS["lung"].width) == (-600, 1500)  # type: ignore[union-attr]
    assert (CT_PRESETS["bone"].center, CT_PRESETS["bone"].width) == (400, 1800)  # type: ignore[union-attr]
    assert CT_PRESETS["from data"] is None
    arr = ramp16(lo=-1000, hi=1000).astype(np.int16)
    fmt = PixelFormat(rows=16, columns=24, pixel_representation=1)
    assert resolve_preset("from data", fmt, arr).explanation == "from data"
    assert resolve_preset("soft tissue", fmt, arr).center == 50


@settings(max_examples=60, deadline=None)
@given(
    center=st.floats(-3000, 3000),
    width=st.floats(1, 5000),
    function=st.sampled_from(["LINEAR", "LINEAR_EXACT", "SIGMOID"]),
    mono1=st.booleans(),
    values=st.lists(st.integers(-32768, 32767), min_size=2, max_size=64),
)
def test_window_is_monotonic(
    center: float, width: float, function: str, mono1: bool, values: list[int]
) -> None:
    arr = np.array(sorted(values), dtype=np.int16).reshape(1, -1)
    fmt = PixelFormat(
        rows=1,
        columns=arr.shape[1],
        pixel_representation=1,
        photometric="MONOCHROME1" if mono1 else "MONOCHROME2",
    )
    out = apply_window(arr, fmt, Window(center, width, function)).astype(int).ravel()
    steps = np.diff(out)
    assert np.all(steps <= 0) if mono1 else np.all(steps >= 0)
    # the float path (int32 input) agrees with the LUT path within rounding
    out32 = apply_window(arr.astype(np.int32), fmt, Window(center, width, function)).astype(int)
    assert np.abs(out32.ravel() - out).max() <= TOL


# ------------------------------------------------------------------ orientation, aspect, fit


def _marker_image() -> tuple[bytes, np.ndarray]:
    arr = np.zeros((256, 512), np.uint16)
    arr[:32, :32] = 1000  # bright marker top-left
    return arr.tobytes(), arr


def test_non_square_image_keeps_orientation_and_aspect() -> None:
    data, _ = _marker_image()
    fmt = PixelFormat(rows=256, columns=512, window_centers=(500.0,), window_widths=(1000.0,))
    img = preview(data, fmt, EXPLICIT_LE, size=(160, 96))
    assert img.size == (160, 80)
    assert img.width > img.height
    px = np.asarray(img)
    assert px[:8, :8].mean() > 200  # marker stays top-left
    assert px[-8:, -8:].mean() < 20 and px[:8, -8:].mean() < 20 and px[-8:, :8].mean() < 20
    full = full_image(data, fmt, EXPLICIT_LE)
    assert full.size == (512, 256)
    assert np.asarray(full)[0, 0] == 255 and np.asarray(full)[255, 511] == 0


def test_non_square_pixel_spacing_changes_aspect() -> None:
    data, _ = _marker_image()
    tall = PixelFormat(rows=256, columns=512, pixel_spacing=(2.0, 1.0))  # rows 2 mm apart
    assert display_size(tall) == (512, 512)
    assert preview(data, tall, EXPLICIT_LE, size=(160, 96)).size == (96, 96)
    assert full_image(data, tall, EXPLICIT_LE).size == (512, 512)
    wide = PixelFormat(rows=256, columns=512, pixel_spacing=(0.5, 1.0))
    assert display_size(wide) == (1024, 256)
    assert preview(data, wide, EXPLICIT_LE, size=(160, 96)).size == (160, 40)
    img = preview(data, tall, EXPLICIT_LE, size=(160, 96))
    assert np.asarray(img)[:4, :4].mean() > 200


def test_fit_never_upscales_by_default() -> None:
    img = Image.new("L", (40, 20))
    assert fit(img, 160, 96).size == (40, 20)
    assert fit(img, 160, 96, upscale=True).size == (160, 80)
    assert fit(Image.new("L", (512, 512)), 160, 96).size == (96, 96)
    assert fit(Image.new("L", (1000, 10)), 80, 48).size == (80, 1)


# ------------------------------------------------------------------ errors


def test_undecodable_frames_raise_with_message() -> None:
    fmt = PixelFormat(rows=16, columns=16, bits_allocated=16, bits_stored=16)
    good = np.zeros((16, 16), np.uint16).tobytes()
    with pytest.raises(UndecodableFrame, match="truncated"):
        decode_frame(good[:-10], fmt, EXPLICIT_LE)
    with pytest.raises(UndecodableFrame, match="wrong frame length"):
        decode_frame(good * 2, fmt, EXPLICIT_LE)
    with pytest.raises(UndecodableFrame, match="1.2.3.999"):
        decode_frame(good, fmt, "1.2.3.999")
    with pytest.raises(UndecodableFrame, match="empty"):
        decode_frame(b"", fmt, EXPLICIT_LE)
    with pytest.raises(UndecodableFrame, match="RLE"):
        decode_frame(b"\x01\x00\x00\x00" + b"\x00" * 60 + b"\x05", fmt, RLELossless)
    with pytest.raises(UndecodableFrame) as info:
        decode_frame(b"\xff\xd8 not a jpeg", fmt, JPEG_BASELINE)
    assert info.value.reason and str(info.value) == info.value.reason
    with pytest.raises(UndecodableFrame, match="PALETTE"):
        apply_window(
            np.zeros((2, 2), np.uint8),
            PixelFormat(
                rows=2, columns=2, photometric="PALETTE COLOR", bits_allocated=8, bits_stored=8
            ),
        )


def test_transfer_syntax_none_means_native_or_stored_syntax() -> None:
    values = ramp16(lo=0, hi=4000).astype(np.uint16)
    fmt = PixelFormat(rows=16, columns=24, transfer_syntax_uid=RLELossless)
    np.testing.assert_array_equal(decode_frame(values.tobytes(), fmt, None), values)
    ds = make_ds(values.tobytes(), 16, 24)
    ds.compress(RLELossless, generate_instance_uid=False)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    np.testing.assert_array_equal(decode_frame(frame, fmt, None), values)


# ------------------------------------------------------------------ sample data, if present


def test_sample_series_all_decode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sample = pytest.importorskip("tui.sample")
    from pydicom import dcmread

    paths = sample.generate(tmp_path)
    assert paths
    decoded = 0
    for path in paths:
        ds = dcmread(path)
        if "PixelData" not in ds:
            continue
        fmt = PixelFormat.from_dataset(ds)
        reference = ds.pixel_array  # pydicom's own full-dataset decode
        if fmt.number_of_frames == 1:
            reference = reference[np.newaxis]
        for k in range(fmt.number_of_frames):
            data, ts = frame_bytes_from_dataset(ds, k)
            assert_close(decode_frame(data, fmt, ts), reference[k], COLOR_TOL)
            img = preview(data, fmt, ts)
            assert img.width <= 160 and img.height <= 96
            decoded += 1
    assert decoded


def test_big_endian_and_one_bit() -> None:
    values = ramp16(lo=0, hi=4095).astype(np.uint16)
    fmt = PixelFormat(rows=16, columns=24, bits_stored=12)
    be = values.astype(">u2").tobytes()
    np.testing.assert_array_equal(decode_frame(be, fmt, "1.2.840.10008.1.2.2"), values)
    bits = (np.arange(8 * 16).reshape(8, 16) % 3 == 0).astype(np.uint8)
    packed = np.packbits(bits.ravel(), bitorder="little").tobytes()
    fmt1 = PixelFormat(rows=8, columns=16, bits_allocated=1, bits_stored=1)
    np.testing.assert_array_equal(decode_frame(packed, fmt1, EXPLICIT_LE), bits)
    assert preview(packed, fmt1, EXPLICIT_LE).size == (16, 8)
