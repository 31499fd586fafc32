"""`pacs-tui frame` against the real Orthanc: each sample series' PNG equals a reference
computed here independently (pydicom's pixel_array, rescale, DICOM linear window, numpy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from tui import cli, sample

IMAGE_SERIES = [k for k, s in sample.SERIES.items() if s.rows]


def reference(ds: pydicom.Dataset, frame: int) -> np.ndarray:
    """Expected 8-bit output for one frame, by the book (PS3.3 C.11.2.1.2.1)."""
    arr = ds.pixel_array
    if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
        arr = arr[frame - 1]
    if ds.PhotometricInterpretation == "RGB":
        return arr.astype(np.uint8)
    x = arr.astype(np.float64) * float(getattr(ds, "RescaleSlope", 1.0)) + float(
        getattr(ds, "RescaleIntercept", 0.0)
    )
    wc = ds.WindowCenter
    ww = ds.WindowWidth
    c = float(wc[0] if isinstance(wc, pydicom.multival.MultiValue) else wc)
    w = float(ww[0] if isinstance(ww, pydicom.multival.MultiValue) else ww)
    y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255.0
    y = np.where(x <= c - 0.5 - (w - 1) / 2, 0.0, np.where(x > c - 0.5 + (w - 1) / 2, 255.0, y))
    y = np.clip(np.rint(y), 0, 255)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        y = 255 - y
    return y.astype(np.uint8)


def slice_order(paths: list[Path]) -> list[pydicom.Dataset]:
    """The series' datasets ordered along the slice normal (or by InstanceNumber)."""
    dss = [pydicom.dcmread(p) for p in paths]
    if len(dss) > 1 and all("ImagePositionPatient" in d for d in dss):
        iop = np.array(dss[0].ImageOrientationPatient, dtype=float)
        normal = np.cross(iop[:3], iop[3:])
        return sorted(
            dss, key=lambda d: float(np.dot(np.array(d.ImagePositionPatient, float), normal))
        )
    return sorted(dss, key=lambda d: int(d.InstanceNumber))


def frame_argv(orthanc, key: str, *extra: str) -> list[str]:
    """`pacs-tui frame` arguments for one sample series on the test Orthanc."""
    spec = sample.SERIES[key]
    return [
        "frame",
        "--url",
        orthanc.dicomweb_url,
        "--user",
        orthanc.user,
        "--study",
        spec.study.study_uid,
        "--series",
        spec.series_uid,
        *extra,
    ]


@pytest.mark.parametrize("key", IMAGE_SERIES)
def test_frame_png_matches_reference(key, orthanc, sample_set, tmp_path, monkeypatch) -> None:
    spec = sample.SERIES[key]
    paths = [
        p
        for p in sample_set.main
        if pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID == spec.series_uid
    ]
    ordered = slice_order(paths)
    instance = min(2, len(ordered))
    frame = 7 if spec.frames > 1 else 1
    out = tmp_path / f"{key}.png"
    monkeypatch.setenv("PACS_TUI_PASSWORD", orthanc.password)
    argv = frame_argv(orthanc, key, "--instance", str(instance), "--frame", str(frame))
    assert cli.main([*argv, "--out", str(out)]) == 0
    got = np.asarray(Image.open(out))
    want = reference(ordered[instance - 1], frame)
    assert got.shape == want.shape
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() <= 1, f"{key}: max difference {diff.max()}"


def test_frame_on_sr_says_no_image(orthanc, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PACS_TUI_PASSWORD", orthanc.password)
    assert cli.main(frame_argv(orthanc, "sr", "--out", str(tmp_path / "sr.png"))) == 1
    assert "no image" in capsys.readouterr().err
    assert not (tmp_path / "sr.png").exists()


def test_frame_with_explicit_window_and_bad_window(orthanc, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PACS_TUI_PASSWORD", orthanc.password)
    base = frame_argv(orthanc, "ct20")
    assert cli.main([*base, "--window", "400,1800", "--out", str(tmp_path / "bone.png")]) == 0
    assert cli.main([*base, "--window=-600,1500", "--out", str(tmp_path / "lung.png")]) == 0
    bone = np.asarray(Image.open(tmp_path / "bone.png"), dtype=int)
    lung = np.asarray(Image.open(tmp_path / "lung.png"), dtype=int)
    assert lung.mean() > bone.mean()  # a lung window brightens soft tissue relative to bone's
    assert cli.main([*base, "--window", "abc", "--out", str(tmp_path / "x.png")]) == 2
    assert "--window" in capsys.readouterr().err


def test_frame_wrong_password_exits_3(orthanc, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PACS_TUI_PASSWORD", "wrong-password")
    assert cli.main(frame_argv(orthanc, "ct1", "--out", str(tmp_path / "x.png"))) == 3
    err = capsys.readouterr().err
    assert "wrong-password" not in err and "Traceback" not in err
