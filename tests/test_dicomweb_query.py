"""Query strings keep DICOM's * ? ^ , - literal and refuse what the server cannot take."""

from __future__ import annotations

import pytest

from tui.dicomweb.errors import InvalidQuery
from tui.dicomweb.query import (
    StudyQuery,
    build_query,
    encode_value,
    includefield_value,
    studies_query,
)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("LAB00*", "LAB00*"),
        ("Doe^J?hn", "Doe^J?hn"),
        ("1.2.3,1.2.4", "1.2.3,1.2.4"),
        ("20240101-20241231", "20240101-20241231"),
        ("a b", "a%20b"),
        ("a&b=c#d%e+f", "a%26b%3Dc%23d%25e%2Bf"),
        ('"<x>"', "%22%3Cx%3E%22"),
        ("CT\\MR", "CT\\MR"),
    ],
)
def test_encode_value_minimal(value: str, encoded: str) -> None:
    assert encode_value(value) == encoded


@pytest.mark.parametrize("value", ["Müller*", "山田", "a\x1bb", "a\nb", "\x7f"])
def test_values_the_server_cannot_take(value: str) -> None:
    with pytest.raises(InvalidQuery) as info:
        encode_value(value, key="PatientName")
    assert "PatientName" in info.value.message
    assert "\n" not in info.value.message


def test_study_query_params_and_includefield() -> None:
    q = StudyQuery(
        patient_id="PTUI*",
        patient_name="M*^Z*",
        study_date="20230101-20241231",
        accession="ACC0001",
        modalities=["CT", "MR"],
        study_uid=["1.2.3", "1.2.4"],
        includefield=("00081030", "StudyID"),
    )
    qs = studies_query(q, limit=10, offset=20)
    assert qs == (
        "PatientID=PTUI*&PatientName=M*^Z*&StudyDate=20230101-20241231&AccessionNumber=ACC0001"
        "&ModalitiesInStudy=CT,MR&StudyInstanceUID=1.2.3,1.2.4"
        "&includefield=00081030,NumberOfStudyRelatedSeries,NumberOfStudyRelatedInstances,"
        "ModalitiesInStudy,PatientBirthDate,PatientSex,StudyID&limit=10&offset=20"
    )


def test_no_filters_and_no_limit() -> None:
    qs = studies_query(None, limit=0, offset=0)
    assert qs.startswith("includefield=00081030,")
    assert "limit" not in qs and "offset" not in qs


@pytest.mark.parametrize("date", ["20240101", "20240101-", "-20241231", "20240101-20241231"])
def test_date_forms_accepted(date: str) -> None:
    assert ("StudyDate", date) in StudyQuery(study_date=date).params()


@pytest.mark.parametrize("date", ["2024", "yesterday", "-", "20240101-2024"])
def test_bad_dates_refused(date: str) -> None:
    with pytest.raises(InvalidQuery, match="StudyDate"):
        StudyQuery(study_date=date).params()


def test_bad_keys_and_includefield_refused() -> None:
    with pytest.raises(InvalidQuery):
        build_query([("a b", "x")])
    with pytest.raises(InvalidQuery):
        includefield_value(["Rows", "Bad,Field"])
    assert includefield_value(["Rows", " Rows", "", "00280010"]) == "Rows,00280010"


def test_non_ascii_refused_before_sending() -> None:
    with pytest.raises(InvalidQuery, match="non-ASCII"):
        studies_query(StudyQuery(patient_name="Müller*"), limit=1, offset=0)
