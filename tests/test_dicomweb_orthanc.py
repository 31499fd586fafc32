"""The client against the real Orthanc with the sample data (session fixture `orthanc`)."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.encaps import generate_frames

from tui import sample
from tui.config import DEFAULT_INCLUDEFIELD, ServerSettings
from tui.dicomweb.client import DicomWebClient
from tui.dicomweb.errors import AuthRefused, InvalidQuery, NotFound, ServerError
from tui.dicomweb.query import StudyQuery

pytestmark = pytest.mark.orthanc

CT = sample.STUDIES["ct"]
ALL_STUDY_UIDS = {s.study_uid for s in sample.ALL_STUDIES.values()}


def last_url(c: DicomWebClient) -> str:
    return c.log.records()[-1].url


def sample_file(sample_dir: Path, series: sample.SeriesSpec, index: int) -> pydicom.Dataset:
    uid = series.sop_uid(index)
    for path in sorted(sample.series_dir(sample_dir, series).glob("*.dcm")):
        ds = pydicom.dcmread(path)
        if ds.SOPInstanceUID == uid:
            return ds
    raise AssertionError(f"no sample file for {uid}")


async def test_server_info(server_settings: ServerSettings) -> None:
    async with DicomWebClient(server_settings) as c:
        info = await c.server_info()
    assert info.product == "Orthanc" and info.version[0].isdigit() and info.dicomweb[0].isdigit()


async def test_wildcard_patient_id_literal(server_settings: ServerSettings) -> None:
    async with DicomWebClient(server_settings) as c:
        studies = await c.search_studies(StudyQuery(patient_id="PTUI00*"), limit=0)
        assert "PatientID=PTUI00*&" in last_url(c)
        one = await c.search_studies(StudyQuery(patient_id="PTUI00?"), limit=0)
    assert {s.study_uid for s in studies} == {s.study_uid for s in sample.STUDIES.values()}
    assert len(one) == len(studies)
    by_uid = {s.study_uid: s for s in studies}
    ct = by_uid[CT.study_uid]
    assert ct.description == CT.description and ct.accession == CT.accession
    assert ct.study_date == sample.sample_date(CT)
    assert ct.patient_name == "Müller^Zoë" and ct.patient_name.display == "Müller, Zoë"
    assert ct.modalities == ("CT",) and ct.patient_sex == "F"
    assert ct.num_series == sum(1 for s in sample.SERIES.values() if s.study_key == "ct")
    assert ct.num_instances == sum(
        s.instances for s in sample.SERIES.values() if s.study_key == "ct"
    )


async def test_person_name_caret_uid_list_modalities_and_dates(
    server_settings: ServerSettings,
) -> None:
    async with DicomWebClient(server_settings) as c:
        named = await c.search_studies(StudyQuery(patient_name="M*^Z*"))
        assert "PatientName=M*^Z*&" in last_url(c)
        uids = [sample.STUDIES["ct"].study_uid, sample.STUDIES["xr"].study_uid]
        listed = await c.search_studies(StudyQuery(study_uid=uids))
        assert f"StudyInstanceUID={uids[0]},{uids[1]}&" in last_url(c)
        mods = await c.search_studies(StudyQuery(modalities=["CR", "MR"]))
        assert "ModalitiesInStudy=CR,MR&" in last_url(c)
        dated = await c.search_studies(StudyQuery(study_date="20240101-20241231"))
        assert "StudyDate=20240101-20241231&" in last_url(c)
        acc = await c.search_studies(StudyQuery(accession="ACC000*"))
    assert {s.patient_id for s in named} == {"PTUI001"} and len(named) == 2
    assert {s.study_uid for s in listed} == set(uids)
    assert {s.study_uid for s in mods} == {sample.STUDIES[k].study_uid for k in ("mr", "xr")}
    assert {s.study_uid for s in dated} == {sample.STUDIES[k].study_uid for k in ("ct", "mr")}
    assert len(acc) == 4
    assert "includefield=00081030,NumberOfStudyRelatedSeries," in last_url(c)


async def test_paging_walks_every_study_once(server_settings: ServerSettings) -> None:
    async with DicomWebClient(server_settings) as c:
        pages = [p async for p in c.iter_study_pages(page_size=2)]
        urls = [r.url for r in c.log.records()]
    seen = [s.study_uid for p in pages for s in p]
    assert sorted(seen) == sorted(ALL_STUDY_UIDS)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert urls[1].endswith("&limit=2&offset=2")


async def test_patients_grouped(server_settings: ServerSettings) -> None:
    async with DicomWebClient(server_settings) as c:
        patients = await c.search_patients(StudyQuery(patient_id="PTUI*"))
    by_id = {p.patient_id: p for p in patients}
    assert set(by_id) == {p.patient_id for p in sample.PATIENTS.values()}
    p1 = by_id["PTUI001"]
    assert p1.study_count == 2 and p1.sex == "F" and str(p1.birth_date) == "1961-03-04"


async def test_series_and_instances(server_settings: ServerSettings) -> None:
    ser = sample.SERIES["ct20"]
    async with DicomWebClient(server_settings) as c:
        series = await c.search_series(CT.study_uid)
        fields = ("Rows", "Columns", "00280100", "InstanceNumber", "ImagePositionPatient")
        qido = await c.search_instances(CT.study_uid, ser.series_uid, fields)
        assert last_url(c).endswith(
            f"/instances?StudyInstanceUID={CT.study_uid}&SeriesInstanceUID={ser.series_uid}"
            "&includefield=Rows,Columns,00280100,InstanceNumber,ImagePositionPatient"
        )
        full = await c.search_instances(CT.study_uid, ser.series_uid, DEFAULT_INCLUDEFIELD)
        wado = await c.series_metadata(CT.study_uid, ser.series_uid)
        rec = c.log.records()
    by_uid = {s.series_uid: s for s in series}
    assert by_uid[ser.series_uid].description == ser.description
    assert by_uid[ser.series_uid].num_instances == ser.instances
    assert by_uid[ser.series_uid].modality == "CT" and by_uid[ser.series_uid].number == ser.number
    assert {i.sop_uid for i in qido} == set(ser.sop_uids)
    assert all(i.rows == 512 and i.columns == 512 and i.bits_allocated == 16 for i in qido)
    q = {i.sop_uid: i for i in full}
    for w in wado:
        i = q[w.sop_uid]
        assert (i.rows, i.columns, i.number, i.bits_stored) == (
            w.rows,
            w.columns,
            w.number,
            w.bits_stored,
        )
        assert i.image_position == w.image_position and i.pixel_spacing == w.pixel_spacing
        assert i.rescale_intercept == w.rescale_intercept and w.has_pixels
    assert [r.kind for r in rec] == [
        "qido-series",
        "qido-instances",
        "qido-instances",
        "wado-metadata",
    ]
    for r in rec:
        assert r.status == 200 and r.outcome == "ok" and r.ttfb_ms is not None
        assert 0 < r.ttfb_ms <= r.total_ms
    # bytes are raw wire bytes: the gzipped metadata is smaller than the JSON it decodes to
    assert rec[-1].bytes < len(str([w.raw for w in wado]))


async def test_uncompressed_frame_byte_identical(
    server_settings: ServerSettings, sample_dir: Path
) -> None:
    ser = sample.SERIES["ct20"]
    ds = sample_file(sample_dir, ser, 3)
    async with DicomWebClient(server_settings) as c:
        parts = await c.frames(CT.study_uid, ser.series_uid, ser.sop_uid(3), [1])
        rec = c.log.records()[-1]
    assert len(parts) == 1
    assert parts[0].data == ds.PixelData
    assert parts[0].transfer_syntax == "1.2.840.10008.1.2.1"
    assert rec.kind == "wado-frames" and rec.bytes >= len(ds.PixelData)


async def test_rle_frame_is_stored_fragment(
    server_settings: ServerSettings, sample_dir: Path
) -> None:
    ser = sample.SERIES["ct_rle"]
    ds = sample_file(sample_dir, ser, 0)
    (fragment,) = list(generate_frames(ds.PixelData, number_of_frames=1))
    async with DicomWebClient(server_settings) as c:
        (part,) = await c.frames(CT.study_uid, ser.series_uid, ser.sop_uid(0), [1])
    assert part.transfer_syntax == "1.2.840.10008.1.2.5"
    assert part.data == fragment


async def test_multiframe_frames_in_order(
    server_settings: ServerSettings, sample_dir: Path
) -> None:
    ser = sample.SERIES["mf24"]
    ds = sample_file(sample_dir, ser, 0)
    size = ds.Rows * ds.Columns * ds.BitsAllocated // 8
    async with DicomWebClient(server_settings) as c:
        parts = [
            p
            async for p in c.iter_frames(
                ser.study.study_uid, ser.series_uid, ser.sop_uid(0), [1, 2, 24]
            )
        ]
    assert [p.data for p in parts] == [ds.PixelData[k * size : (k + 1) * size] for k in (0, 1, 23)]


async def test_rendered_jpeg(server_settings: ServerSettings) -> None:
    ser = sample.SERIES["ct20"]
    async with DicomWebClient(server_settings) as c:
        whole = await c.rendered(CT.study_uid, ser.series_uid, ser.sop_uid(0), viewport=(64, 64))
        frame = await c.rendered(CT.study_uid, ser.series_uid, ser.sop_uid(0), 1, window=(40, 400))
    assert whole[:2] == frame[:2] == b"\xff\xd8"


async def test_no_pixel_series_and_missing_things(server_settings: ServerSettings) -> None:
    sr = sample.SERIES["sr"]
    async with DicomWebClient(server_settings) as c:
        (inst,) = await c.search_instances(sr.study.study_uid, sr.series_uid, ["Rows"])
        assert not inst.has_pixels
        with pytest.raises(ServerError):
            await c.frames(sr.study.study_uid, sr.series_uid, sr.sop_uid(0), [1])
        with pytest.raises(NotFound):
            await c.series_metadata(CT.study_uid, "1.2.3.4.5.6.7")
        assert await c.search_series("1.2.3.4.5.6.7") == []


async def test_wrong_password_refused(server_settings: ServerSettings) -> None:
    from dataclasses import replace

    async with DicomWebClient(replace(server_settings, password="wrong")) as c:
        with pytest.raises(AuthRefused, match="HTTP 401"):
            await c.server_info()
    assert [r.outcome for r in c.log.records()] == ["http-error"]


async def test_non_ascii_refused_before_sending(server_settings: ServerSettings) -> None:
    async with DicomWebClient(server_settings) as c:
        with pytest.raises(InvalidQuery):
            await c.search_studies(StudyQuery(patient_name="Müller*"))
    assert c.log.records() == []
