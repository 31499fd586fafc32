"""Deterministic synthetic DICOM sample data for tests, benchmarks and the demo.

`generate(dest)` writes the main set (valid for a strict validator such as dciodvfy);
`generate_hostile(dest)` writes one extra study whose patient name holds Rich markup and a
terminal escape sequence. That name is not valid PN text, so it is kept out of the main set;
the test fixture and the demo upload it next to the main set.

Layout on disk: ``dest/<patient key>/<study key>/<series key>/<NNNN>.dcm``.
Every UID is built from `UID_ROOT` plus counters, so two runs give the same UIDs and the same
bytes (for the same pydicom version).

The set (look series up by key in `SERIES`):

- patient ``p1`` Müller^Zoë: study ``ct`` (CT, 7 series: ``ct1``, ``ct20``, ``ct100``,
  ``ct320``, ``ct_signed``, ``ct_rle``, ``nonsquare``) and study ``mr`` (``mr``): 2 studies,
  8 series.
- patient ``p2`` 山田^太郎: study ``xr`` (``cr_mono1`` MONOCHROME1 CR, ``sc_rgb`` RGB SC).
- patient ``p3`` Παπαδόπουλος^Νίκος: study ``misc`` (``mf24`` 24-frame grayscale word SC,
  ``sr`` Basic Text SR without pixel data).
- hostile (separate helper): patient ``evil``, study ``evil``, series ``evil``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    BasicTextSRStorage,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    RLELossless,
    SecondaryCaptureImageStorage,
)

SAMPLE_VERSION = "1"
"""Bumped whenever the generated set changes (used as the demo cache stamp)."""

UID_ROOT = "1.2.826.0.1.3680043.10.1082."
IMPLEMENTATION_CLASS_UID = UID_ROOT + "0.1"
IMPLEMENTATION_VERSION_NAME = "PACSTUI_SAMPLE1"
CHARSET = "ISO_IR 192"


@dataclass(frozen=True)
class PatientSpec:
    """One sample patient."""

    key: str
    patient_id: str
    name: str
    birth_date: str
    sex: str


@dataclass(frozen=True)
class StudySpec:
    """One sample study."""

    key: str
    patient_key: str
    study_uid: str
    study_id: str
    date: str
    time: str
    description: str
    accession: str
    referring_physician: str


@dataclass(frozen=True)
class SeriesSpec:
    """One sample series: what it is and how its instances look."""

    key: str
    study_key: str
    series_uid: str
    number: int
    modality: str
    description: str
    sop_class_uid: str
    instances: int
    rows: int | None
    columns: int | None
    frames: int = 1
    transfer_syntax: str = ExplicitVRLittleEndian
    photometric: str | None = "MONOCHROME2"
    pixel_representation: int = 0
    bits_allocated: int = 16
    bits_stored: int = 12
    slice_spacing: float = 0.0

    @property
    def has_pixels(self) -> bool:
        """True when the instances carry PixelData."""
        return self.rows is not None

    @property
    def study(self) -> StudySpec:
        """The study this series belongs to."""
        return ALL_STUDIES[self.study_key]

    @property
    def patient(self) -> PatientSpec:
        """The patient this series belongs to."""
        return ALL_PATIENTS[self.study.patient_key]

    def sop_uid(self, index: int) -> str:
        """SOP Instance UID of instance `index` (0-based)."""
        return f"{UID_ROOT}3.{self.number_global}.{index + 1}"

    @property
    def number_global(self) -> int:
        """Counter used in this series' UIDs."""
        return int(self.series_uid.rsplit(".", 1)[1])

    @property
    def sop_uids(self) -> list[str]:
        """All SOP Instance UIDs of the series, in instance order."""
        return [self.sop_uid(i) for i in range(self.instances)]


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


def _study_uid(n: int) -> str:
    return f"{UID_ROOT}1.{n}"


def _series_uid(n: int) -> str:
    return f"{UID_ROOT}2.{n}"


def _for_uid(n: int) -> str:
    return f"{UID_ROOT}4.{n}"


PATIENTS: dict[str, PatientSpec] = {
    "p1": PatientSpec("p1", "PTUI001", "Müller^Zoë", "19610304", "F"),
    "p2": PatientSpec("p2", "PTUI002", "山田^太郎", "19750815", "M"),
    "p3": PatientSpec("p3", "PTUI003", "Παπαδόπουλος^Νίκος", "19880123", "M"),
}

STUDIES: dict[str, StudySpec] = {
    "ct": StudySpec(
        "ct",
        "p1",
        _study_uid(1),
        "CT1",
        "20240311",
        "091500",
        "CT Thorax Abdomen",
        "ACC0001",
        "Dupré^Élodie^^Dr",
    ),
    "mr": StudySpec(
        "mr",
        "p1",
        _study_uid(2),
        "MR1",
        "20240502",
        "141000",
        "MR Head",
        "ACC0002",
        "Dupré^Élodie^^Dr",
    ),
    "xr": StudySpec(
        "xr",
        "p2",
        _study_uid(3),
        "XR1",
        "20230120",
        "080000",
        "Chest X-ray and capture",
        "ACC0003",
        "佐藤^花子",
    ),
    "misc": StudySpec(
        "misc",
        "p3",
        _study_uid(4),
        "MI1",
        "20221109",
        "163000",
        "Cine and report",
        "ACC0004",
        "Γεωργίου^Μαρία",
    ),
}

_CT = CTImageStorage
SERIES: dict[str, SeriesSpec] = {
    "ct1": SeriesSpec("ct1", "ct", _series_uid(1), 1, "CT", "Scout single slice", _CT, 1, 512, 512),
    "ct20": SeriesSpec(
        "ct20", "ct", _series_uid(2), 2, "CT", "Thorax 15mm", _CT, 20, 512, 512, slice_spacing=15.0
    ),
    "ct100": SeriesSpec(
        "ct100", "ct", _series_uid(3), 3, "CT", "Thorax 3mm", _CT, 100, 512, 512, slice_spacing=3.0
    ),
    "ct320": SeriesSpec(
        "ct320", "ct", _series_uid(4), 4, "CT", "Thorax 1mm", _CT, 320, 512, 512, slice_spacing=1.0
    ),
    "ct_signed": SeriesSpec(
        "ct_signed",
        "ct",
        _series_uid(5),
        5,
        "CT",
        "Signed pixels",
        _CT,
        10,
        512,
        512,
        pixel_representation=1,
        bits_stored=16,
        slice_spacing=10.0,
    ),
    "ct_rle": SeriesSpec(
        "ct_rle",
        "ct",
        _series_uid(6),
        6,
        "CT",
        "RLE lossless",
        _CT,
        10,
        512,
        512,
        transfer_syntax=RLELossless,
        slice_spacing=10.0,
    ),
    "nonsquare": SeriesSpec(
        "nonsquare",
        "ct",
        _series_uid(7),
        7,
        "CT",
        "Non-square 256x512",
        _CT,
        3,
        256,
        512,
        slice_spacing=5.0,
    ),
    "mr": SeriesSpec(
        "mr",
        "mr",
        _series_uid(8),
        1,
        "MR",
        "T2 axial",
        MRImageStorage,
        20,
        256,
        256,
        slice_spacing=5.0,
    ),
    "cr_mono1": SeriesSpec(
        "cr_mono1",
        "xr",
        _series_uid(9),
        1,
        "CR",
        "Chest PA MONOCHROME1",
        ComputedRadiographyImageStorage,
        1,
        640,
        512,
        photometric="MONOCHROME1",
    ),
    "sc_rgb": SeriesSpec(
        "sc_rgb",
        "xr",
        _series_uid(10),
        2,
        "OT",
        "RGB capture",
        SecondaryCaptureImageStorage,
        1,
        256,
        384,
        photometric="RGB",
        bits_allocated=8,
        bits_stored=8,
    ),
    "mf24": SeriesSpec(
        "mf24",
        "misc",
        _series_uid(11),
        1,
        "OT",
        "Cine 24 frames",
        MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
        1,
        256,
        256,
        frames=24,
    ),
    "sr": SeriesSpec(
        "sr",
        "misc",
        _series_uid(12),
        2,
        "SR",
        "Text report",
        BasicTextSRStorage,
        1,
        None,
        None,
        photometric=None,
    ),
}

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

HOSTILE_PATIENT = PatientSpec("evil", "EVIL001", "[red]X[/red]\x1b[2J^Evil", "20000101", "O")
HOSTILE_STUDY = StudySpec(
    "evil",
    "evil",
    _study_uid(99),
    "EV1",
    "20200202",
    "120000",
    "[bold]Markup[/bold] \x1b[31mred\x1b[0m",
    "ACC[0099]",
    "",
)
HOSTILE_SERIES = SeriesSpec(
    "evil",
    "evil",
    _series_uid(99),
    1,
    "OT",
    "[link=http://x]click[/link]\x07",
    SecondaryCaptureImageStorage,
    1,
    64,
    64,
    bits_allocated=8,
    bits_stored=8,
)

ALL_PATIENTS: dict[str, PatientSpec] = {**PATIENTS, "evil": HOSTILE_PATIENT}
ALL_STUDIES: dict[str, StudySpec] = {**STUDIES, "evil": HOSTILE_STUDY}

INSTANCE_COUNT = sum(s.instances for s in SERIES.values())
"""Number of files `generate` writes."""
HOSTILE_INSTANCE_COUNT = HOSTILE_SERIES.instances


# ---------------------------------------------------------------------------------------------
# pixels


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
def _ct_slice_hu(z_mm: int) -> np.ndarray:
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


def _mr_slice(k: int, n: int) -> np.ndarray:
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


def _nonsquare_pixels() -> np.ndarray:
    m = NONSQUARE_MARKER
    img = np.tile(np.linspace(200, 1200, 512, dtype=np.float32), (256, 1)).astype(np.uint16)
    img[slice(*m.square_rows), slice(*m.square_cols)] = m.value
    img[slice(*m.l_vertical_rows), slice(*m.l_vertical_cols)] = m.value
    img[slice(*m.l_horizontal_rows), slice(*m.l_horizontal_cols)] = m.value
    return img


def _cr_pixels() -> np.ndarray:
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


def _rgb_pixels() -> np.ndarray:
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


def _mf_pixels(frames: int) -> np.ndarray:
    c = np.arange(256, dtype=np.float32)
    base = (np.add.outer(c, c) * 4).astype(np.uint16)
    out = np.repeat(base[None, :, :], frames, axis=0)
    for k in range(frames):
        d = np.add.outer((c - 128) ** 2, (c - (20 + 9 * k)) ** 2) < MF_DOT_RADIUS**2
        out[k][d] = 4000
    return out


# ---------------------------------------------------------------------------------------------
# datasets


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
    ds.FrameOfReferenceUID = _for_uid(1 if series.study_key == "ct" else series.number_global)
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
        pixels: np.ndarray = _nonsquare_pixels()
        ds.RescaleIntercept = -1024
        ds.WindowCenter = 500
        ds.WindowWidth = 2000
    elif series.pixel_representation == 1:
        pixels = _ct_slice_hu(z)
        ds.RescaleIntercept = 0
        ds.WindowCenter = 40
        ds.WindowWidth = 400
    else:
        pixels = (_ct_slice_hu(z) + 1024).clip(0, 4095).astype(np.uint16)
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
    _image_pixel(ds, series, _mr_slice(index, series.instances))
    return ds


def _cr(series: SeriesSpec, index: int) -> Dataset:
    ds = _base(series, index)
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["R", "F"]
    ds.ImagerPixelSpacing = [0.7, 0.7]
    ds.WindowCenter = 2300
    ds.WindowWidth = 3000
    _image_pixel(ds, series, _cr_pixels())
    return ds


def _sc_common(ds: Dataset) -> None:
    ds.ConversionType = "WSD"
    ds.Laterality = ""
    ds.PatientOrientation = ""


def _sc_rgb(series: SeriesSpec, index: int) -> Dataset:
    ds = _base(series, index)
    _sc_common(ds)
    _image_pixel(ds, series, _rgb_pixels())
    return ds


def _sc_small(series: SeriesSpec, index: int) -> Dataset:
    ds = _base(series, index)
    _sc_common(ds)
    c = np.arange(64, dtype=np.uint16)
    _image_pixel(ds, series, (np.add.outer(c, c) * 2).astype(np.uint8))
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
    _image_pixel(ds, series, _mf_pixels(series.frames))
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


def _write_series(dest: Path, series: SeriesSpec) -> list[Path]:
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
        paths.extend(_write_series(dest, series))
    return paths


def generate_hostile(dest: Path) -> list[Path]:
    """Write the hostile study (patient name with Rich markup and an ESC sequence).

    Not valid PN text, hence kept apart from `generate`; the test fixture and the demo upload
    it so the app's escaping can be checked against a real server.
    """
    return _write_series(Path(dest), HOSTILE_SERIES)


def sample_date(study: StudySpec) -> datetime.date:
    """The study date as a `datetime.date`."""
    return datetime.datetime.strptime(study.date, "%Y%m%d").date()
