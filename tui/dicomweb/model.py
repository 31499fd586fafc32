"""Patient / Study / Series / Instance built from DICOM JSON (PS3.18 F.2), tolerant of gaps.

Missing tags give None (or an empty tuple); garbage dates give None; DS/IS values may come
as JSON numbers, strings or backslash-joined strings. A dataset that is not a JSON object, or
lacks the UID that identifies it, raises MalformedAnswer.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from math import isfinite
from typing import Any, TypeGuard

from .errors import MalformedAnswer

Json = Mapping[str, Any]

T_STUDY_UID, T_SERIES_UID, T_SOP_UID, T_SOP_CLASS = "0020000D", "0020000E", "00080018", "00080016"
T_PATIENT_ID, T_PATIENT_NAME, T_BIRTH, T_SEX = "00100020", "00100010", "00100030", "00100040"
T_STUDY_DATE, T_STUDY_TIME, T_STUDY_DESC, T_ACCESSION = (
    "00080020",
    "00080030",
    "00081030",
    "00080050",
)
T_MODALITIES, T_N_STUDY_SERIES, T_N_STUDY_INST = "00080061", "00201206", "00201208"
T_SERIES_NUMBER, T_MODALITY, T_SERIES_DESC, T_N_SERIES_INST = (
    "00200011",
    "00080060",
    "0008103E",
    "00201209",
)
T_INSTANCE_NUMBER, T_ROWS, T_COLUMNS, T_FRAMES = "00200013", "00280010", "00280011", "00280008"
T_POSITION, T_ORIENTATION, T_SPACING, T_THICKNESS = "00200032", "00200037", "00280030", "00180050"
T_BITS_ALLOC, T_BITS_STORED, T_HIGH_BIT, T_PIXEL_REP = (
    "00280100",
    "00280101",
    "00280102",
    "00280103",
)
T_PHOTOMETRIC, T_SAMPLES, T_PLANAR = "00280004", "00280002", "00280006"
T_SLOPE, T_INTERCEPT, T_WC, T_WW, T_VOI_FN = (
    "00281053",
    "00281052",
    "00281050",
    "00281051",
    "00281056",
)
T_TRANSFER_SYNTAX, T_AVAILABLE_TS, T_IMAGE_TYPE = "00020010", "00083002", "00080008"
PIXEL_TAGS = ("7FE00010", "7FE00008", "7FE00009")


def _is_map(obj: object) -> TypeGuard[Mapping[str, Any]]:
    return type(obj) is dict or isinstance(obj, Mapping)  # the fast check first


def _check(ds: object) -> Json:
    if not _is_map(ds):
        raise MalformedAnswer(f"bad DICOM JSON: expected an object, got {type(ds).__name__}")
    return ds


def values(ds: Json, tag: str) -> list[Any]:
    """The Value list of a tag, [] when absent or malformed."""
    el = ds.get(tag)
    if type(el) is not dict and (el is None or not isinstance(el, Mapping)):
        return []
    val = el.get("Value")
    return val if type(val) is list else []


def text(ds: Json, tag: str) -> str | None:
    """First value of a string tag, stripped; None when absent or empty."""
    el = ds.get(tag)
    if el is None:
        return None
    if type(el) is dict:  # the common case, inline
        vals = el.get("Value")
        if type(vals) is list and vals and type(vals[0]) is str:
            return vals[0].strip() or None
    vals = values(ds, tag)
    if not vals or vals[0] is None:
        return None
    v = vals[0]
    if _is_map(v):  # a person name object
        v = v.get("Alphabetic", "")
    s = str(v).strip()
    return s or None


def texts(ds: Json, tag: str) -> tuple[str, ...]:
    """All values of a string tag (backslash-joined strings split)."""
    out: list[str] = []
    for v in values(ds, tag):
        if v is None:
            continue
        out.extend(p.strip() for p in str(v).split("\\") if p.strip())
    return tuple(out)


def _numbers(vals: list[Any]) -> tuple[float, ...]:
    out: list[float] = []
    for v in vals:
        kind = type(v)
        if kind is float or kind is int:  # the common case: a JSON number
            out.append(float(v))
            continue
        for p in v.split("\\") if kind is str else (v,):
            if isinstance(p, bool) or p is None:
                continue
            try:
                out.append(float(p))
            except (TypeError, ValueError):
                continue
    return tuple(out)


def numbers(ds: Json, tag: str) -> tuple[float, ...]:
    """All numeric values (DS/IS/US/FL...), from numbers or strings; garbage skipped."""
    vals = values(ds, tag)
    return _numbers(vals) if vals else ()


def _first_number(ds: Json, tag: str) -> float | int | None:
    """The first value when it is a JSON number (not a bool), else None: the fast path."""
    el = ds.get(tag)
    if type(el) is dict:
        vals = el.get("Value")
        if type(vals) is list and vals:
            v = vals[0]
            kind = type(v)
            if kind is float or kind is int:
                return v  # type: ignore[no-any-return]
    return None


def number(ds: Json, tag: str) -> float | None:
    """The first numeric value, or None."""
    v = _first_number(ds, tag)
    if v is not None:
        return float(v)
    nums = numbers(ds, tag)
    return nums[0] if nums else None


def integer(ds: Json, tag: str) -> int | None:
    """The first value as an int, or None."""
    v = _first_number(ds, tag)
    n = float(v) if v is not None else number(ds, tag)
    if n is None or not isfinite(n):
        return None
    return int(n)


def parse_date(value: str | None) -> _dt.date | None:
    """DICOM DA ("YYYYMMDD", also "YYYY.MM.DD") to a date; anything else gives None."""
    if not value:
        return None
    digits = value.strip().replace(".", "").replace("-", "")
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return _dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


class PersonName(str):
    """A DICOM person name (the Alphabetic group, e.g. "Doe^John"); `.display` is readable."""

    @property
    def components(self) -> tuple[str, ...]:
        """Family, given, middle, prefix, suffix (missing ones are empty)."""
        parts = self.split("=")[0].split("^")
        return tuple((parts + [""] * 5)[:5])

    @property
    def display(self) -> str:
        """ "Doe^John^M^Dr" -> "Doe, Dr John M"; a name without components is returned as is."""
        family, given, middle, prefix, suffix = (c.strip() for c in self.components)
        rest = " ".join(p for p in (prefix, given, middle) if p)
        out = f"{family}, {rest}" if family and rest else family or rest
        return f"{out}, {suffix}" if suffix and out else out or suffix


def person_name(ds: Json, tag: str) -> PersonName | None:
    """The person name of a PN tag (Alphabetic group; plain strings tolerated)."""
    vals = values(ds, tag)
    if not vals:
        return None
    v = vals[0]
    if isinstance(v, Mapping):
        v = v.get("Alphabetic") or ""
    s = str(v).strip() if v is not None else ""
    return PersonName(s) if s else None


def _uid(ds: Json, tag: str, fallback: str | None, what: str) -> str:
    uid = text(ds, tag) or fallback
    if not uid:
        raise MalformedAnswer(f"bad DICOM JSON: {what} without its UID ({tag})")
    return uid


@dataclass(frozen=True)
class Study:
    """One study from a QIDO-RS /studies answer."""

    study_uid: str
    patient_id: str | None = None
    patient_name: PersonName | None = None
    patient_birth_date: _dt.date | None = None
    patient_sex: str | None = None
    study_date: _dt.date | None = None
    study_time: str | None = None
    description: str | None = None
    accession: str | None = None
    modalities: tuple[str, ...] = ()
    num_series: int | None = None
    num_instances: int | None = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, ds: object) -> Study:
        """Build from one DICOM JSON dataset."""
        d = _check(ds)
        return cls(
            study_uid=_uid(d, T_STUDY_UID, None, "study"),
            patient_id=text(d, T_PATIENT_ID),
            patient_name=person_name(d, T_PATIENT_NAME),
            patient_birth_date=parse_date(text(d, T_BIRTH)),
            patient_sex=text(d, T_SEX),
            study_date=parse_date(text(d, T_STUDY_DATE)),
            study_time=text(d, T_STUDY_TIME),
            description=text(d, T_STUDY_DESC),
            accession=text(d, T_ACCESSION),
            modalities=texts(d, T_MODALITIES),
            num_series=integer(d, T_N_STUDY_SERIES),
            num_instances=integer(d, T_N_STUDY_INST),
            raw=d,
        )


@dataclass(frozen=True)
class Patient:
    """A patient: the studies of one PatientID grouped together."""

    patient_id: str | None
    name: PersonName | None
    birth_date: _dt.date | None
    sex: str | None
    studies: tuple[Study, ...]

    @property
    def study_count(self) -> int:
        """How many studies this patient has (in the searched set)."""
        return len(self.studies)


def group_patients(studies: Iterable[Study]) -> list[Patient]:
    """Group studies by PatientID, keeping the order of first appearance."""
    groups: dict[str | None, list[Study]] = {}
    for s in studies:
        groups.setdefault(s.patient_id, []).append(s)
    out = []
    for pid, group in groups.items():
        first = group[0]
        out.append(
            Patient(
                patient_id=pid,
                name=next((s.patient_name for s in group if s.patient_name), None),
                birth_date=next(
                    (s.patient_birth_date for s in group if s.patient_birth_date), None
                ),
                sex=next((s.patient_sex for s in group if s.patient_sex), first.patient_sex),
                studies=tuple(group),
            )
        )
    return out


@dataclass(frozen=True)
class Series:
    """One series from a QIDO-RS /studies/{uid}/series answer."""

    study_uid: str
    series_uid: str
    number: int | None = None
    modality: str | None = None
    description: str | None = None
    num_instances: int | None = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, ds: object, study_uid: str | None = None) -> Series:
        """Build from one DICOM JSON dataset (study_uid fills a missing 0020000D)."""
        d = _check(ds)
        return cls(
            study_uid=_uid(d, T_STUDY_UID, study_uid, "series"),
            series_uid=_uid(d, T_SERIES_UID, None, "series"),
            number=integer(d, T_SERIES_NUMBER),
            modality=text(d, T_MODALITY),
            description=text(d, T_SERIES_DESC),
            num_instances=integer(d, T_N_SERIES_INST),
            raw=d,
        )


def _opt(nums: tuple[float, ...]) -> tuple[float, ...] | None:
    return nums or None


@dataclass(frozen=True)
class Instance:
    """One instance, from QIDO-RS /instances (with includefield) or WADO-RS /metadata."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str | None = None
    number: int | None = None
    rows: int | None = None
    columns: int | None = None
    number_of_frames: int = 1
    image_position: tuple[float, ...] | None = None
    image_orientation: tuple[float, ...] | None = None
    pixel_spacing: tuple[float, ...] | None = None
    slice_thickness: float | None = None
    bits_allocated: int | None = None
    bits_stored: int | None = None
    high_bit: int | None = None
    pixel_representation: int | None = None
    photometric: str | None = None
    samples_per_pixel: int | None = None
    planar_configuration: int | None = None
    rescale_slope: float | None = None
    rescale_intercept: float | None = None
    window_center: tuple[float, ...] = ()
    window_width: tuple[float, ...] = ()
    voi_lut_function: str | None = None
    transfer_syntax_uid: str | None = None
    image_type: tuple[str, ...] = ()
    has_pixels: bool = False
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(
        cls, ds: object, study_uid: str | None = None, series_uid: str | None = None
    ) -> Instance:
        """Build from one DICOM JSON dataset; BulkDataURI/InlineBinary values are tolerated."""
        d = _check(ds)
        rows, columns = integer(d, T_ROWS), integer(d, T_COLUMNS)
        frames = integer(d, T_FRAMES)
        return cls(
            study_uid=_uid(d, T_STUDY_UID, study_uid, "instance"),
            series_uid=_uid(d, T_SERIES_UID, series_uid, "instance"),
            sop_uid=_uid(d, T_SOP_UID, None, "instance"),
            sop_class_uid=text(d, T_SOP_CLASS),
            number=integer(d, T_INSTANCE_NUMBER),
            rows=rows,
            columns=columns,
            number_of_frames=frames if frames and frames > 0 else 1,
            image_position=_opt(numbers(d, T_POSITION)),
            image_orientation=_opt(numbers(d, T_ORIENTATION)),
            pixel_spacing=_opt(numbers(d, T_SPACING)),
            slice_thickness=number(d, T_THICKNESS),
            bits_allocated=integer(d, T_BITS_ALLOC),
            bits_stored=integer(d, T_BITS_STORED),
            high_bit=integer(d, T_HIGH_BIT),
            pixel_representation=integer(d, T_PIXEL_REP),
            photometric=text(d, T_PHOTOMETRIC),
            samples_per_pixel=integer(d, T_SAMPLES),
            planar_configuration=integer(d, T_PLANAR),
            rescale_slope=number(d, T_SLOPE),
            rescale_intercept=number(d, T_INTERCEPT),
            window_center=numbers(d, T_WC),
            window_width=numbers(d, T_WW),
            voi_lut_function=text(d, T_VOI_FN),
            transfer_syntax_uid=text(d, T_TRANSFER_SYNTAX) or text(d, T_AVAILABLE_TS),
            image_type=texts(d, T_IMAGE_TYPE),
            has_pixels=any(t in d for t in PIXEL_TAGS) or bool(rows and columns),
            raw=d,
        )
