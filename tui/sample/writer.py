"""Sample datasets and files: turns the specs and the pixels into DICOM on disk.

Layout on disk: ``dest/<patient key>/<study key>/<series key>/<NNNN>.dcm``. The output is
the same bytes on every run (for the same pydicom version): UIDs come from the specs, pixels
from seeded generators, and nothing depends on the clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, RLELossless

from .pixels import (
    cr_pixels,
    ct_slice_hu,
    diagonal_ramp_pixels,
    mf_pixels,
    mr_slice,
    nonsquare_pixels,
    rgb_pixels,
)
from .specs import HOSTILE_SERIES, SERIES, UID_ROOT, SeriesSpec, frame_of_reference_uid

IMPLEMENTATION_CLASS_UID = UID_ROOT + "0.1"
IMPLEMENTATION_VERSION_NAME = "PACSTUI_SAMPLE1"
CHARSET = "ISO_IR 192"


def _base(series: SeriesSpec, index: int) -> Dataset:
    study = series.study
    patient = series.patient
    sop_uid = series.sop_uid(index)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(series.sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = CHARSET
    ds.SOPClassUID = series.sop_class_uid
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = study.date
    ds.SeriesDate = study.date
    ds.ContentDate = study.date
    ds.StudyTime = study.time
    ds.SeriesTime = study.time
    ds.ContentTime = study.time
    ds.AccessionNumber = study.accession
    ds.Modality = series.modality
    ds.Manufacturer = "pacs-tui sample"
    ds.InstitutionName = "Sample Hospital"
    ds.ReferringPhysicianName = study.referring_physician
    ds.StudyDescription = study.description
    ds.SeriesDescription = series.description
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = series.series_uid
    ds.StudyID = study.study_id
    ds.SeriesNumber = series.number
    ds.InstanceNumber = index + 1
    return ds


def _image_pixel(ds: Dataset, series: SeriesSpec, pixels: np.ndarray) -> None:
    ds.SamplesPerPixel = 3 if series.photometric == "RGB" else 1
    if series.photometric == "RGB":
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = series.photometric
    ds.Rows = series.rows
    ds.Columns = series.columns
    ds.BitsAllocated = series.bits_allocated
    ds.BitsStored = series.bits_stored
    ds.HighBit = series.bits_stored - 1
    ds.PixelRepresentation = series.pixel_representation
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()


def _plane(ds: Dataset, series: SeriesSpec, z: float, spacing: tuple[float, float]) -> None:
    ds.FrameOfReferenceUID = frame_of_reference_uid(
        1 if series.study_key == "ct" else series.number_global
    )
    ds.PositionReferenceIndicator = ""
    ds.PatientPosition = "HFS"
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    assert series.rows is not None and series.columns is not None
    ds.ImagePositionPatient = [-spacing[1] * series.columns / 2, -spacing[0] * series.rows / 2, z]
    ds.PixelSpacing = list(spacing)
    ds.SliceThickness = series.slice_spacing or 1.0
    ds.SliceLocation = z


def _z_positions(series: SeriesSpec) -> list[int]:
    """Integer mm positions (so slices are shared between series via the slice cache)."""
    n = series.instances
    if n == 1:
        return [0]
    step = series.slice_spacing
    start = -step * (n - 1) / 2
    return [int(round(start + k * step)) for k in range(n)]


def _ct(series: SeriesSpec, index: int, z: int) -> Dataset:
    ds = _base(series, index)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.KVP = 120
    ds.AcquisitionNumber = 1
    ds.BodyPartExamined = "CHEST"
    _plane(ds, series, float(z), (0.7, 0.7))
    if series.key == "nonsquare":
        pixels: np.ndarray = nonsquare_pixels()
        ds.RescaleIntercept = -1024
        ds.WindowCenter = 500
        ds.WindowWidth = 2000
    elif series.pixel_representation == 1:
        pixels = ct_slice_hu(z)
        ds.RescaleIntercept = 0
        ds.WindowCenter = 40
        ds.WindowWidth = 400
    else:
        pixels = (ct_slice_hu(z) + 1024).clip(0, 4095).astype(np.uint16)
        ds.RescaleIntercept = -1024
        ds.WindowCenter = [40, -600]
        ds.WindowWidth = [400, 1500]
        ds.WindowCenterWidthExplanation = ["SOFT TISSUE", "LUNG"]
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    _image_pixel(ds, series, pixels)
    return ds


def _mr(series: SeriesSpec, index: int, z: int) -> Dataset:
    ds = _base(series, index)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = 4000
    ds.EchoTime = 100
    ds.EchoTrainLength = 16
    ds.MagneticFieldStrength = 1.5
    ds.BodyPartExamined = "HEAD"
    ds.AcquisitionNumber = 1
    _plane(ds, series, float(z), (0.9, 0.9))
    ds.WindowCenter = 1400
    ds.WindowWidth = 2800
    _image_pixel(ds, series, mr_slice(index, series.instances))
    return ds


def _cr(series: SeriesSpec, index: int) -> Dataset:
    ds = _base(series, index)
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["R", "F"]
    ds.ImagerPixelSpacing = [0.7, 0.7]
    ds.WindowCenter = 2300
    ds.WindowWidth = 3000
    _image_pixel(ds, series, cr_pixels())
    return ds


def _sc_common(ds: Dataset) -> None:
    ds.ConversionType = "WSD"
    ds.Laterality = ""
    ds.PatientOrientation = ""


def _sc_rgb(series: SeriesSpec, index: int) -> Dataset:
    ds = _base(series, index)
    _sc_common(ds)
    _image_pixel(ds, series, rgb_pixels())
    return ds


def _sc_small(series: SeriesSpec, index: int) -> Dataset:
    ds = _base(series, index)
    _sc_common(ds)
    _image_pixel(ds, series, diagonal_ramp_pixels())
    return ds


def _mf(series: SeriesSpec, index: int) -> Dataset:
    ds = _base(series, index)
    _sc_common(ds)
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.NumberOfFrames = series.frames
    ds.FrameIncrementPointer = 0x00181063  # FrameTime
    ds.FrameTime = 40.0
    ds.BurnedInAnnotation = "NO"
    ds.PresentationLUTShape = "IDENTITY"
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    ds.WindowCenter = 2048
    ds.WindowWidth = 4096
    _image_pixel(ds, series, mf_pixels(series.frames))
    return ds


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _sr(series: SeriesSpec, index: int) -> Dataset:
    ds = _base(series, index)
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds.PerformedProcedureCodeSequence = Sequence()
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([_code("11528-7", "LN", "Radiology Report")])
    ds.ContinuityOfContent = "SEPARATE"
    items = []
    for heading, text in (("121060", "History"), ("121070", "Findings")):
        item = Dataset()
        item.RelationshipType = "CONTAINS"
        item.ValueType = "TEXT"
        item.ConceptNameCodeSequence = Sequence([_code(heading, "DCM", text)])
        item.TextValue = f"{text}: synthetic sample text, Ünïcödé ✓ 日本語 Ελληνικά."
        items.append(item)
    ds.ContentSequence = Sequence(items)
    return ds


def _datasets(series: SeriesSpec) -> Iterator[Dataset]:
    if series.modality == "CT":
        for i, z in enumerate(_z_positions(series)):
            yield _ct(series, i, z)
        return
    for i in range(series.instances):
        if series.modality == "MR":
            yield _mr(series, i, _z_positions(series)[i])
        elif series.modality == "CR":
            yield _cr(series, i)
        elif series.key == "sc_rgb":
            yield _sc_rgb(series, i)
        elif series.key == "mf24":
            yield _mf(series, i)
        elif series.modality == "SR":
            yield _sr(series, i)
        else:
            yield _sc_small(series, i)


def series_dir(dest: Path, series: SeriesSpec) -> Path:
    """Folder that holds the files of `series` under `dest`."""
    return dest / series.study.patient_key / series.study_key / series.key


def write_series(dest: Path, series: SeriesSpec) -> list[Path]:
    """Write the files of one series under `dest` (see `series_dir`); return their paths."""
    folder = series_dir(dest, series)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in _datasets(series):
        if series.transfer_syntax == RLELossless:
            ds.compress(RLELossless, generate_instance_uid=False)
        path = folder / f"{int(ds.InstanceNumber):04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def generate(dest: Path) -> list[Path]:
    """Write the main sample set (all of `SERIES`) under `dest`; return the file paths.

    Deterministic: the same UIDs and the same bytes on every run.
    """
    dest = Path(dest)
    paths: list[Path] = []
    for series in SERIES.values():
        paths.extend(write_series(dest, series))
    return paths


def generate_hostile(dest: Path) -> list[Path]:
    """Write the hostile study (patient name with Rich markup and an ESC sequence).

    Not valid PN text, hence kept apart from `generate`; the test fixture and the demo upload
    it so the app's escaping can be checked against a real server.
    """
    return write_series(Path(dest), HOSTILE_SERIES)
