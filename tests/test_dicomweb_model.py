"""Model objects from DICOM JSON: names, dates, multi-valued numbers, missing tags."""

from __future__ import annotations

import datetime as dt

import pytest

from tui.dicomweb.errors import MalformedAnswer
from tui.dicomweb.model import (
    Instance,
    PersonName,
    Series,
    Study,
    group_patients,
    numbers,
    parse_date,
)


def el(vr: str, *values: object) -> dict[str, object]:
    return {"vr": vr, "Value": list(values)}


STUDY = {
    "0020000D": el("UI", "1.2.3"),
    "00100020": el("LO", "PID1"),
    "00100010": el("PN", {"Alphabetic": "Doe^John^Q^Dr^Jr"}),
    "00100030": el("DA", "19610304"),
    "00100040": el("CS", "M"),
    "00080020": el("DA", "20240311"),
    "00080030": el("TM", "091500"),
    "00081030": el("LO", "CT Thorax"),
    "00080050": el("SH", "ACC1"),
    "00080061": el("CS", "CT", "SR"),
    "00201206": el("IS", 3),
    "00201208": el("IS", "42"),
}


def test_study_from_json() -> None:
    s = Study.from_json(STUDY)
    assert s.study_uid == "1.2.3" and s.patient_id == "PID1"
    assert s.patient_name == "Doe^John^Q^Dr^Jr"
    assert s.patient_name is not None and s.patient_name.display == "Doe, Dr John Q, Jr"
    assert s.patient_birth_date == dt.date(1961, 3, 4)
    assert s.study_date == dt.date(2024, 3, 11)
    assert s.description == "CT Thorax" and s.accession == "ACC1"
    assert s.modalities == ("CT", "SR")
    assert (s.num_series, s.num_instances) == (3, 42)


def test_study_missing_tags_and_garbage() -> None:
    s = Study.from_json(
        {
            "0020000D": el("UI", "1.2.3"),
            "00080020": el("DA", "2024-13-45"),
            "00100010": {"vr": "PN"},
            "00201206": el("IS", "many"),
            "00081030": {"vr": "LO", "Value": [None]},
        }
    )
    assert s.study_date is None and s.patient_name is None and s.num_series is None
    assert s.description is None and s.modalities == ()


def test_missing_uid_or_not_an_object_is_malformed() -> None:
    with pytest.raises(MalformedAnswer):
        Study.from_json({"00100020": el("LO", "x")})
    with pytest.raises(MalformedAnswer):
        Study.from_json(["not", "a", "dataset"])
    with pytest.raises(MalformedAnswer):
        Series.from_json({"0020000D": el("UI", "1")})


@pytest.mark.parametrize(
    ("raw", "display"),
    [
        ("Doe^John", "Doe, John"),
        ("Doe", "Doe"),
        ("^John", "John"),
        ("^", ""),
        ("Doe^John=ドウ^ジョン", "Doe, John"),
        ("Müller^Zoë", "Müller, Zoë"),
    ],
)
def test_person_name_display(raw: str, display: str) -> None:
    assert PersonName(raw).display == display


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20240229", dt.date(2024, 2, 29)),
        ("2024.02.29", dt.date(2024, 2, 29)),
        ("20230229", None),
        ("", None),
        (None, None),
        ("abcdefgh", None),
        ("2024", None),
    ],
)
def test_parse_date(value: str | None, expected: dt.date | None) -> None:
    assert parse_date(value) == expected


def test_numbers_from_strings_numbers_and_backslashes() -> None:
    ds = {
        "1": el("DS", "1.5", 2, "3\\4.25", "junk", None, True),
        "2": {"vr": "DS"},
        "3": "not an element",
    }
    assert numbers(ds, "1") == (1.5, 2.0, 3.0, 4.25)
    assert numbers(ds, "2") == () and numbers(ds, "3") == () and numbers(ds, "missing") == ()


def test_instance_from_metadata_with_bulkdata() -> None:
    ds = {
        "00080018": el("UI", "1.2.3.4.5"),
        "00080016": el("UI", "1.2.840.10008.5.1.4.1.1.2"),
        "00200013": el("IS", "7"),
        "00280010": el("US", 512),
        "00280011": el("US", 256),
        "00280008": el("IS", "24"),
        "00200032": el("DS", "-100", "-120.5", 30),
        "00200037": el("DS", 1, 0, 0, 0, 1, 0),
        "00280030": el("DS", "0.7", "0.7"),
        "00180050": el("DS", "1.25"),
        "00280100": el("US", 16),
        "00280101": el("US", 12),
        "00280102": el("US", 11),
        "00280103": el("US", 1),
        "00280004": el("CS", "MONOCHROME2"),
        "00280002": el("US", 1),
        "00281053": el("DS", "1"),
        "00281052": el("DS", "-1024"),
        "00281050": el("DS", "40", "400"),
        "00281051": el("DS", "400\\2000"),
        "00281056": el("CS", "LINEAR"),
        "00020010": el("UI", "1.2.840.10008.1.2.5"),
        "00080008": el("CS", "ORIGINAL", "PRIMARY", "AXIAL"),
        "7FE00010": {"vr": "OW", "BulkDataURI": "http://x/bulk"},
        "00091001": {"vr": "OB", "InlineBinary": "AAEC"},
    }
    i = Instance.from_json(ds, "1.2", "1.2.3")
    assert (i.study_uid, i.series_uid, i.sop_uid) == ("1.2", "1.2.3", "1.2.3.4.5")
    assert (i.number, i.rows, i.columns, i.number_of_frames) == (7, 512, 256, 24)
    assert i.image_position == (-100.0, -120.5, 30.0)
    assert i.image_orientation == (1, 0, 0, 0, 1, 0)
    assert i.pixel_spacing == (0.7, 0.7) and i.slice_thickness == 1.25
    assert (i.bits_allocated, i.bits_stored, i.high_bit, i.pixel_representation) == (16, 12, 11, 1)
    assert i.photometric == "MONOCHROME2" and i.samples_per_pixel == 1
    assert (i.rescale_slope, i.rescale_intercept) == (1.0, -1024.0)
    assert i.window_center == (40.0, 400.0) and i.window_width == (400.0, 2000.0)
    assert i.voi_lut_function == "LINEAR"
    assert i.transfer_syntax_uid == "1.2.840.10008.1.2.5"
    assert i.image_type == ("ORIGINAL", "PRIMARY", "AXIAL")
    assert i.has_pixels


def test_instance_without_pixels_and_defaults() -> None:
    i = Instance.from_json({"00080018": el("UI", "9")}, "1", "2")
    assert not i.has_pixels and i.number_of_frames == 1 and i.rows is None
    assert i.window_center == () and i.image_position is None


def test_group_patients() -> None:
    a = Study.from_json({**STUDY, "0020000D": el("UI", "1")})
    b = Study.from_json({"0020000D": el("UI", "2"), "00100020": el("LO", "PID2")})
    c = Study.from_json({**STUDY, "0020000D": el("UI", "3"), "00100010": {"vr": "PN"}})
    patients = group_patients([a, b, c])
    assert [p.patient_id for p in patients] == ["PID1", "PID2"]
    assert patients[0].study_count == 2 and patients[0].name == "Doe^John^Q^Dr^Jr"
    assert patients[0].birth_date == dt.date(1961, 3, 4) and patients[0].sex == "M"
    assert patients[1].name is None and patients[1].study_count == 1
