"""QIDO-RS query strings built by hand.

The Orthanc build on Debian does not percent-decode query strings (see ORTHANC-NOTES.md,
quirk 1): `PatientID=LAB00%2A` matches nothing while `PatientID=LAB00*` matches. So the
characters that carry DICOM meaning (`* ? ^ , - . \\`) stay literal, and only what would
break the query string itself (space, `& = # % +`, and `" < >` which httpx would encode
anyway) is percent-encoded. Values the server cannot take (non-ASCII on that build,
control characters) raise `InvalidQuery` before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import InvalidQuery

# Study-level attributes always asked for (Orthanc's default answer lacks StudyDescription).
STUDY_INCLUDEFIELD: tuple[str, ...] = (
    "00081030",  # StudyDescription
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
    "ModalitiesInStudy",
    "PatientBirthDate",
    "PatientSex",
)
SERIES_INCLUDEFIELD: tuple[str, ...] = (
    "SeriesDescription",
    "NumberOfSeriesRelatedInstances",
)

_MUST_ENCODE = {c: f"%{ord(c):02X}" for c in ' &=#%+"<>'}
_KEY = re.compile(r"^[A-Za-z0-9]+$")
_DATE_RANGE = re.compile(r"^(\d{8})?(-)?(\d{8})?$")


def encode_value(value: str, *, key: str = "value") -> str:
    """Percent-encode only what must be encoded; raise InvalidQuery for unusable values."""
    out = []
    for ch in value:
        code = ord(ch)
        if code > 0x7E:
            raise InvalidQuery(
                f"{key}: non-ASCII characters cannot be searched on this server "
                "(query strings are not decoded); use ASCII and wildcards (* ?) instead"
            )
        if code < 0x20 or code == 0x7F:
            raise InvalidQuery(f"{key}: control characters are not allowed in a search value")
        out.append(_MUST_ENCODE.get(ch, ch))
    return "".join(out)


def build_query(params: Iterable[tuple[str, str]]) -> str:
    """Join (key, value) pairs into a query string (no leading '?'), values encoded minimally."""
    parts = []
    for key, value in params:
        if not _KEY.match(key):
            raise InvalidQuery(f"invalid query key {key!r}")
        parts.append(f"{key}={encode_value(value, key=key)}")
    return "&".join(parts)


def includefield_value(fields: Iterable[str]) -> str:
    """One comma-separated includefield value, duplicates removed, order kept."""
    seen: dict[str, None] = {}
    for f in fields:
        f = f.strip()
        if not f:
            continue
        if not _KEY.match(f):
            raise InvalidQuery(f"invalid includefield entry {f!r} (use a keyword or 8 hex digits)")
        seen.setdefault(f, None)
    return ",".join(seen)


def _as_list(value: str | Sequence[str]) -> str:
    if isinstance(value, str):
        return value
    return ",".join(v.strip() for v in value if v.strip())


@dataclass(frozen=True)
class StudyQuery:
    """Filters for a QIDO-RS /studies search; None means "no filter".

    `study_date` is "YYYYMMDD", "YYYYMMDD-YYYYMMDD", "YYYYMMDD-" or "-YYYYMMDD";
    `modalities` and `study_uid` may be one string or a list (sent comma-separated).
    """

    patient_id: str | None = None
    patient_name: str | None = None
    study_date: str | None = None
    accession: str | None = None
    modalities: str | Sequence[str] | None = None
    study_uid: str | Sequence[str] | None = None
    includefield: tuple[str, ...] = ()

    def params(self) -> list[tuple[str, str]]:
        """The (key, value) filter pairs of this query, includefield last."""
        out: list[tuple[str, str]] = []
        if self.patient_id:
            out.append(("PatientID", self.patient_id))
        if self.patient_name:
            out.append(("PatientName", self.patient_name))
        if self.study_date:
            date = self.study_date.strip()
            m = _DATE_RANGE.match(date)
            if not m or not (m.group(1) or m.group(3)):
                raise InvalidQuery(
                    f"StudyDate {date!r}: expected YYYYMMDD or a range YYYYMMDD-YYYYMMDD"
                )
            out.append(("StudyDate", date))
        if self.accession:
            out.append(("AccessionNumber", self.accession))
        if self.modalities:
            out.append(("ModalitiesInStudy", _as_list(self.modalities)))
        if self.study_uid:
            out.append(("StudyInstanceUID", _as_list(self.study_uid)))
        out.append(("includefield", includefield_value((*STUDY_INCLUDEFIELD, *self.includefield))))
        return out


def studies_query(query: StudyQuery | None, *, limit: int, offset: int) -> str:
    """The query string of a /studies search with paging (limit 0 = no limit)."""
    params = (query or StudyQuery()).params()
    if limit:
        params.append(("limit", str(int(limit))))
    if offset:
        params.append(("offset", str(int(offset))))
    return build_query(params)
