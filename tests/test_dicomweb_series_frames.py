"""WADO-RS series retrieval (`iter_series_frames`): whole instances in one request, split into
frames; against the real Orthanc (session fixture `orthanc`) and with httpx.MockTransport."""

from __future__ import annotations

from contextlib import aclosing
from io import BytesIO
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_fragments
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

from tui import sample
from tui.config import ServerSettings
from tui.dicomweb.client import (
    FRAMES_ACCEPT,
    SERIES_ACCEPT,
    DicomWebClient,
    InstanceFrames,
    split_frames,
)
from tui.dicomweb.errors import InvalidQuery, MalformedAnswer
from tui.imaging.decode import decode_frame
from tui.imaging.pixelformat import PixelFormat

URL = "http://pacs.test/dicom-web"
BOUNDARY = "b0undary"


def stored(sample_dir: Path, series: sample.SeriesSpec) -> dict[str, pydicom.Dataset]:
    """The generated files of `series`, by SOP Instance UID."""
    out = {}
    for path in sorted(sample.series_dir(sample_dir, series).glob("*.dcm")):
        ds = pydicom.dcmread(path)
        out[str(ds.SOPInstanceUID)] = ds
    return out


def frames_records(c: DicomWebClient) -> list:
    return [r for r in c.log.records() if r.kind == "wado-frames"]


# ------------------------------------------------------------------ real Orthanc


@pytest.mark.orthanc
async def test_ct100_every_frame_byte_identical_in_one_request(
    server_settings: ServerSettings, sample_dir: Path
) -> None:
    ser = sample.SERIES["ct100"]
    files = stored(sample_dir, ser)
    async with DicomWebClient(server_settings) as c:
        got = await c.series_frames(ser.study.study_uid, ser.series_uid)
        (rec,) = c.log.records()
    assert sorted(i.sop_uid for i in got) == sorted(ser.sop_uids)
    for inst in got:
        assert inst.transfer_syntax == ExplicitVRLittleEndian
        assert inst.frames == (files[inst.sop_uid].PixelData,)
        assert 0x7FE00010 not in inst.dataset and "7FE00010" not in inst.attrs
    assert rec.kind == "wado-frames" and rec.purpose == "prefetch" and rec.outcome == "ok"
    assert rec.url.endswith(f"/studies/{ser.study.study_uid}/series/{ser.series_uid}")
    assert rec.status == 200 and rec.series_uid == ser.series_uid
    assert rec.bytes >= sum(len(ds.PixelData) for ds in files.values())
    # attrs are DICOM JSON that the imaging layer decodes with
    inst = got[0]
    fmt = PixelFormat.from_dicom_json(inst.attrs, inst.transfer_syntax)
    assert (fmt.rows, fmt.columns, fmt.number_of_frames) == (512, 512, 1)
    arr = decode_frame(inst.frames[0], fmt, inst.transfer_syntax)
    assert np.array_equal(arr, files[inst.sop_uid].pixel_array)


@pytest.mark.orthanc
async def test_rle_frames_are_the_stored_fragments(
    server_settings: ServerSettings, sample_dir: Path
) -> None:
    ser = sample.SERIES["ct_rle"]
    files = stored(sample_dir, ser)
    async with DicomWebClient(server_settings) as c:
        got = await c.series_frames(ser.study.study_uid, ser.series_uid, purpose="selected")
        assert len(c.log.records()) == 1 and c.log.records()[0].purpose == "selected"
    assert len(got) == ser.instances == len(files)
    for inst in got:
        assert inst.transfer_syntax == RLELossless  # stored syntax, not transcoded
        _bot, *fragments = generate_fragments(files[inst.sop_uid].PixelData)  # item 0: offsets
        assert list(inst.frames) == fragments and len(fragments) == 1
    fmt = PixelFormat.from_dicom_json(got[0].attrs, got[0].transfer_syntax)
    arr = decode_frame(got[0].frames[0], fmt, got[0].transfer_syntax)
    assert np.array_equal(arr, files[got[0].sop_uid].pixel_array)


@pytest.mark.orthanc
async def test_multiframe_yields_24_frames_in_order(
    server_settings: ServerSettings, sample_dir: Path
) -> None:
    ser = sample.SERIES["mf24"]
    (ds,) = stored(sample_dir, ser).values()
    size = ds.Rows * ds.Columns * ds.BitsAllocated // 8
    async with DicomWebClient(server_settings) as c:
        got = [i async for i in c.iter_series_frames(ser.study.study_uid, ser.series_uid)]
        assert len(frames_records(c)) == 1
    (inst,) = got
    assert inst.sop_uid == ser.sop_uid(0) and inst.number_of_frames == 24
    assert list(inst.frames) == [ds.PixelData[k * size : (k + 1) * size] for k in range(24)]
    assert PixelFormat.from_dicom_json(inst.attrs).number_of_frames == 24


@pytest.mark.orthanc
async def test_stopping_early_closes_the_stream(server_settings: ServerSettings) -> None:
    ser = sample.SERIES["ct100"]
    async with DicomWebClient(server_settings) as c:
        async with aclosing(c.iter_series_frames(ser.study.study_uid, ser.series_uid)) as it:
            async for inst in it:
                assert isinstance(inst, InstanceFrames)
                break
        (rec,) = c.log.records()
        assert rec.outcome == "cancelled" and c.log.in_flight == 0
        assert rec.bytes < 52_000_000  # the rest of the series was not downloaded
        # the connection is usable again at once
        assert len(await c.series_frames(ser.study.study_uid, ser.series_uid)) == 100


@pytest.mark.orthanc
async def test_no_pixel_instance_has_no_frames(server_settings: ServerSettings) -> None:
    sr = sample.SERIES["sr"]
    async with DicomWebClient(server_settings) as c:
        (inst,) = await c.series_frames(sr.study.study_uid, sr.series_uid)
    assert inst.frames == () and inst.sop_uid == sr.sop_uid(0)


@pytest.mark.orthanc
async def test_gzip_can_be_offered_for_frames(server_settings: ServerSettings) -> None:
    ser = sample.SERIES["ct20"]
    args = (ser.study.study_uid, ser.series_uid, ser.sop_uid(0), [1])
    async with DicomWebClient(server_settings) as c:
        (plain,) = await c.frames(*args)
        (gz,) = await c.frames(*args, accept_encoding="gzip")
        plain_rec, gz_rec = c.log.records()
    assert plain.content_encoding == "identity" and gz.content_encoding == "gzip"
    assert plain.data == gz.data
    assert gz_rec.bytes < len(gz.data) < plain_rec.bytes  # wire bytes: compressed vs not


# ------------------------------------------------------------------ MockTransport


def _part10(pixels: bytes = b"\x01\x02" * 8, sop: str = "1.2.3.4.1") -> bytes:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = sop
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 2, 4, 1
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = 1 if len(pixels) == 16 else len(pixels) // 16
    ds.PixelData = pixels
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _multipart(*bodies: bytes, close: bool = True) -> bytes:
    out = b""
    for body in bodies:
        out += (
            (
                f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
            + b"\r\n"
        )
    return out + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


def _client(body: bytes, seen: list[httpx.Request] | None = None) -> DicomWebClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        ct = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
        return httpx.Response(200, content=body, headers={"Content-Type": ct})

    settings = ServerSettings(url=URL, user="u", password="pw")
    return DicomWebClient(settings, transport=httpx.MockTransport(handler), backoff_base=0.001)


async def test_request_headers_and_two_parts() -> None:
    seen: list[httpx.Request] = []
    pixels = bytes(range(48))
    async with _client(_multipart(_part10(), _part10(pixels, "1.2.3.4.2")), seen) as c:
        got = await c.series_frames("1.2", "1.2.3")
        (rec,) = c.log.records()
    (req,) = seen
    assert req.headers["accept"] == SERIES_ACCEPT != FRAMES_ACCEPT
    assert req.headers["accept-encoding"] == "identity"
    assert str(req.url) == f"{URL}/studies/1.2/series/1.2.3"
    assert [i.sop_uid for i in got] == ["1.2.3.4.1", "1.2.3.4.2"]
    assert got[0].frames == (b"\x01\x02" * 8,)
    assert got[1].frames == (pixels[:16], pixels[16:32], pixels[32:])
    assert got[1].headers["content-type"] == "application/dicom"
    assert (rec.kind, rec.purpose, rec.outcome) == ("wado-frames", "prefetch", "ok")


async def test_truncated_multipart_raises_malformed_answer() -> None:
    body = _multipart(_part10(), _part10(sop="1.2.3.4.2"), close=False)
    for cut in (len(body), len(body) - 300):  # no closing delimiter; part cut short
        async with _client(body[:cut]) as c:
            with pytest.raises(MalformedAnswer, match="truncated multipart"):
                await c.series_frames("1.2", "1.2.3")
            (rec,) = c.log.records()  # not retried
            assert rec.outcome == "decode-error" and rec.kind == "wado-frames"


async def test_truncated_instance_inside_a_complete_part_raises_malformed_answer() -> None:
    async with _client(_multipart(_part10()[:-6])) as c:
        with pytest.raises(MalformedAnswer, match="series answer"):
            await c.series_frames("1.2", "1.2.3")
        assert [r.outcome for r in c.log.records()] == ["decode-error"]
    async with _client(_multipart(b"not a dicom file at all")) as c:
        with pytest.raises(MalformedAnswer, match="not a readable DICOM instance"):
            await c.series_frames("1.2", "1.2.3")


async def test_bad_uids_refused_before_any_request() -> None:
    async with _client(b"") as c:
        with pytest.raises(InvalidQuery):
            await c.series_frames("1.2/../x", "1.2.3")
        assert c.log.records() == []


def test_split_frames_one_bit_not_byte_aligned() -> None:
    ds = Dataset()
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.BitsAllocated = 3, 3, 1, 1
    ds.NumberOfFrames = 3
    frames = [0b101010101, 0b000011111, 0b111100001]  # 9 bits each
    whole = sum(f << (9 * k) for k, f in enumerate(frames))
    ds.PixelData = whole.to_bytes(4, "little")
    assert split_frames(ds, ExplicitVRLittleEndian) == tuple(
        f.to_bytes(2, "little") for f in frames
    )
    ds.NumberOfFrames = 4
    with pytest.raises(MalformedAnswer, match="too few"):
        split_frames(ds, ExplicitVRLittleEndian)
