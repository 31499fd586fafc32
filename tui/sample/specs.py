"""What the sample set holds: its patients, studies and series, and their UIDs.

Every UID is built from `UID_ROOT` plus counters, so two runs give the same UIDs. Arcs under
the root: ``1.`` study, ``2.`` series, ``3.`` SOP instance, ``4.`` frame of reference.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from pydicom.uid import (
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


def _study_uid(n: int) -> str:
    return f"{UID_ROOT}1.{n}"


def _series_uid(n: int) -> str:
    return f"{UID_ROOT}2.{n}"


def frame_of_reference_uid(n: int) -> str:
    """Frame of Reference UID number `n` (series that share `n` share a patient space)."""
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


def sample_date(study: StudySpec) -> datetime.date:
    """The study date as a `datetime.date`."""
    return datetime.datetime.strptime(study.date, "%Y%m%d").date()
