"""DicomWebClient: QIDO-RS searches, WADO-RS metadata, frames, series and rendered images.

One client per server (one httpx.AsyncClient: keep-alive, timeouts, TLS, auth sent up front,
a cap on requests in flight). JSON requests accept gzip; pixel requests ask for identity
(ORTHANC-NOTES quirk 2). Every attempt is recorded in the RequestLog; idempotent GETs are
retried with back-off on 408/429/502/503/504 and connection errors.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from functools import cached_property
from io import BytesIO
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from tui.config import ServerSettings

from .errors import AuthRefused, DicomWebError, InvalidQuery, MalformedAnswer, Unreachable
from .model import Instance, Patient, Series, Study, group_patients
from .multipart import MultipartParser, Part, parse_content_type, transfer_syntax_of
from .query import (
    SERIES_INCLUDEFIELD,
    StudyQuery,
    build_query,
    includefield_value,
    studies_query,
)
from .requestlog import RequestLog
from .transport import JSON_HEADERS, PIXEL_HEADERS, Context, Transport

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

M = TypeVar("M")
R = TypeVar("R")
FRAMES_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
SERIES_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
"""Whole instances in their stored syntax (`type="application/octet-stream"` at series level
answers 400 on Orthanc 1.10.1 / DICOMweb 1.7)."""
_UID_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class FramePart:
    """One frame from a WADO-RS frames answer, with its part headers."""

    headers: dict[str, str]
    content_type: str | None
    transfer_syntax: str | None
    data: bytes = field(repr=False)
    content_encoding: str = "identity"
    """Content-Encoding of the HTTP answer that carried the frame (e.g. "gzip")."""


@dataclass(frozen=True)
class ServerInfo:
    """What the server is: product ("Orthanc" or "unknown"), its version, the DICOMweb plugin."""

    product: str = "unknown"
    version: str = "unknown"
    dicomweb: str = "unknown"

    @property
    def label(self) -> str:
        """E.g. "Orthanc 1.10.1" (or "unknown")."""
        if self.version == "unknown":
            return self.product
        return f"{self.product} {self.version}"


@dataclass(frozen=True, eq=False)
class InstanceFrames:
    """One whole instance from a WADO-RS series retrieval: its raw frames and attributes.

    `frames` are what WADO-RS frames would answer for each frame, in order: slices of a
    native PixelData, or the compressed bitstream of each frame of an encapsulated one
    (empty when the instance has no pixel data). `dataset` is the parsed instance without
    its PixelData; `attrs` its DICOM JSON, built on first use (~0.7 ms for a CT slice, more
    than parsing the whole file).
    """

    sop_uid: str
    transfer_syntax: str
    frames: tuple[bytes, ...] = field(repr=False)
    dataset: Dataset = field(repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def number_of_frames(self) -> int:
        """How many frames the instance has (0 without pixel data)."""
        return len(self.frames)

    @cached_property
    def attrs(self) -> dict[str, Any]:
        """DICOM JSON (PS3.18 F.2) of the instance, PixelData left out."""
        return self.dataset.to_json_dict(suppress_invalid_tags=True)


def _frame(part: Part, top_ts: str | None, encoding: str = "identity") -> FramePart:
    ct = part.content_type
    return FramePart(part.headers, ct, transfer_syntax_of(ct) or top_ts, part.body, encoding)


_NATIVE_SYNTAXES = frozenset(
    {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"}
)
_PIXEL_DATA = 0x7FE00010


def _int_attr(ds: Dataset, keyword: str, default: int) -> int:
    value = ds.get(keyword)
    if value is None or value == "":
        return default
    return int(value)


def split_frames(ds: Dataset, transfer_syntax: str) -> tuple[bytes, ...]:
    """The frames of a parsed instance's PixelData, as WADO-RS frames would answer them.

    Native syntaxes: consecutive slices of Rows x Columns x SamplesPerPixel x BitsAllocated
    bits (1-bit frames that are not byte aligned are shifted out bit by bit). Encapsulated:
    one bitstream per frame (pydicom.encaps.generate_frames; the Extended Offset Table is used
    when present). Raises MalformedAnswer when PixelData is too short or unreadable.
    """
    elem = ds.get(_PIXEL_DATA)
    if elem is None or elem.value is None:
        return ()
    pixel_data: bytes = elem.value
    count = _int_attr(ds, "NumberOfFrames", 1)
    if count < 1:
        raise MalformedAnswer(f"NumberOfFrames is {count}")
    if transfer_syntax not in _NATIVE_SYNTAXES:
        from pydicom.encaps import generate_frames

        eot = ds.get("ExtendedOffsetTable")
        eotl = ds.get("ExtendedOffsetTableLengths")
        offsets = (eot, eotl) if eot and eotl else None
        frames = tuple(
            generate_frames(pixel_data, number_of_frames=count, extended_offsets=offsets)
        )
        if len(frames) != count:
            raise MalformedAnswer(f"{len(frames)} encapsulated frames, NumberOfFrames {count}")
        return frames
    bits = (
        _int_attr(ds, "Rows", 0)
        * _int_attr(ds, "Columns", 0)
        * _int_attr(ds, "SamplesPerPixel", 1)
        * _int_attr(ds, "BitsAllocated", 16)
    )
    size = (bits + 7) // 8
    if bits <= 0 or len(pixel_data) < (count * bits + 7) // 8:
        raise MalformedAnswer(
            f"PixelData holds {len(pixel_data)} bytes, too few for {count} frame(s) of {size}"
        )
    if count == 1:
        return (pixel_data if len(pixel_data) == size else pixel_data[:size],)
    if bits % 8 == 0:
        return tuple(pixel_data[i * size : (i + 1) * size] for i in range(count))
    # 1-bit pixels packed across frame boundaries (PS3.5 8.1.1): pixel k is bit k of the
    # buffer read as one little-endian integer.
    whole, mask = int.from_bytes(pixel_data, "little"), (1 << bits) - 1
    return tuple(((whole >> (i * bits)) & mask).to_bytes(size, "little") for i in range(count))


def _instance(part: Part, top_ts: str | None) -> InstanceFrames:
    """Parse one application/dicom part (a Part 10 file) and split its frames."""
    from pydicom import dcmread

    try:
        ds = dcmread(BytesIO(part.body), force=False)
        ds.buffer = None  # do not keep the whole part alive through the dataset
        ts = str(ds.file_meta.get("TransferSyntaxUID") or "") or (
            transfer_syntax_of(part.content_type) or top_ts or "1.2.840.10008.1.2.1"
        )
        sop = str(ds.get("SOPInstanceUID") or ds.file_meta.get("MediaStorageSOPInstanceUID") or "")
        frames = split_frames(ds, ts)
        if _PIXEL_DATA in ds:
            del ds[_PIXEL_DATA]
    except MalformedAnswer as err:
        raise MalformedAnswer(f"bad instance in a series answer: {err.message}") from None
    except Exception as exc:  # not DICOM, truncated file, bad values
        raise MalformedAnswer(
            f"a part of the series answer is not a readable DICOM instance "
            f"({type(exc).__name__}: {str(exc)[:80]})"
        ) from None
    return InstanceFrames(sop, ts, frames, ds, part.headers)


def _uid(value: str, what: str) -> str:
    if not value or not _UID_SAFE.match(value):
        raise InvalidQuery(f"{what}: not a valid UID: {value[:70]!r}")
    return value


def _json(resp: httpx.Response, host: str) -> Any:
    if resp.status_code == 204 or not resp.content.strip():
        return []
    mime, _ = parse_content_type(resp.headers.get("content-type"))
    if mime in ("text/html", "application/xhtml+xml"):
        raise MalformedAnswer(f"{host} answered an HTML page, not DICOM JSON (check the URL)")
    try:
        return json.loads(resp.content)
    except ValueError:
        raise MalformedAnswer(f"{host} answered something that is not JSON ({mime})") from None


def _datasets(resp: httpx.Response, host: str) -> list[Any]:
    data = _json(resp, host)
    if not isinstance(data, list):
        raise MalformedAnswer(f"bad DICOM JSON from {host}: expected a list of datasets")
    return data


class DicomWebClient:
    """Async DICOMweb client for one server; use `async with` or call `aclose()`."""

    def __init__(
        self,
        server: ServerSettings,
        log: RequestLog | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff_base: float = 0.2,
    ) -> None:
        self.server = server
        self._t = Transport(server, log, transport=transport, backoff_base=backoff_base)
        self.log = self._t.log
        self.base_url = self._t.base_url

    def __repr__(self) -> str:
        return f"DicomWebClient({self.server.name!r}, {self.base_url!r})"

    async def aclose(self) -> None:
        """Close the connections."""
        await self._t.aclose()

    async def __aenter__(self) -> DicomWebClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _get_datasets(
        self, path: str, query: str, ctx: Context, build: Callable[[Any], M]
    ) -> list[M]:
        url = self.base_url + path + (f"?{query}" if query else "")
        host = self._t.host

        def decode(resp: httpx.Response) -> list[M]:
            return [build(d) for d in _datasets(resp, host)]

        return await self._t.get(url, ctx, JSON_HEADERS, decode)

    # ---------------------------------------------------------------- QIDO-RS
    async def search_studies(
        self,
        query: StudyQuery | None = None,
        *,
        limit: int = 50,
        offset: int = 0,
        purpose: str = "list",
    ) -> list[Study]:
        """QIDO-RS /studies with the filters of `query`; limit 0 means no limit."""
        qs = studies_query(query, limit=limit, offset=offset)
        return await self._get_datasets(
            "/studies", qs, Context("qido-studies", purpose), Study.from_json
        )

    async def iter_study_pages(
        self, query: StudyQuery | None = None, *, page_size: int = 50, purpose: str = "list"
    ) -> AsyncIterator[list[Study]]:
        """Walk every matching study, one page (limit/offset) at a time."""
        if page_size <= 0:
            raise InvalidQuery("page_size must be positive")
        offset = 0
        while True:
            page = await self.search_studies(query, limit=page_size, offset=offset, purpose=purpose)
            if page:
                yield page
            if len(page) < page_size:
                return
            offset += page_size

    async def search_patients(
        self,
        query: StudyQuery | None = None,
        *,
        limit: int = 50,
        offset: int = 0,
        purpose: str = "list",
    ) -> list[Patient]:
        """Studies matching `query` (limit/offset count studies) grouped by PatientID."""
        studies = await self.search_studies(query, limit=limit, offset=offset, purpose=purpose)
        return group_patients(studies)

    async def search_series(self, study_uid: str, *, purpose: str = "list") -> list[Series]:
        """QIDO-RS /studies/{uid}/series with SeriesDescription and instance counts."""
        _uid(study_uid, "StudyInstanceUID")
        qs = build_query([("includefield", includefield_value(SERIES_INCLUDEFIELD))])
        ctx = Context("qido-series", purpose, study_uid)
        return await self._get_datasets(
            f"/studies/{study_uid}/series", qs, ctx, lambda d: Series.from_json(d, study_uid)
        )

    async def find_series(self, series_uid: str, *, purpose: str = "list") -> Series | None:
        """The series with this UID, from a study-less QIDO-RS /series search (which tells
        its study), or None when the server has no such series."""
        _uid(series_uid, "SeriesInstanceUID")
        qs = build_query(
            [
                ("SeriesInstanceUID", series_uid),
                ("includefield", includefield_value(SERIES_INCLUDEFIELD)),
            ]
        )
        ctx = Context("qido-series", purpose, None, series_uid)
        found = await self._get_datasets("/series", qs, ctx, Series.from_json)
        return found[0] if found else None

    async def search_instances(
        self,
        study_uid: str,
        series_uid: str,
        includefield: Sequence[str] = (),
        *,
        purpose: str = "selected",
    ) -> list[Instance]:
        """QIDO-RS instances of a series, with the `includefield` tags (keywords or hex).

        Uses the flat `/instances?StudyInstanceUID=..&SeriesInstanceUID=..` form: Orthanc
        then leaves out the study and series attributes repeated on every instance (about
        30% fewer bytes and ~12% faster on a 320-instance series).
        """
        _uid(study_uid, "StudyInstanceUID")
        _uid(series_uid, "SeriesInstanceUID")
        params = [("StudyInstanceUID", study_uid), ("SeriesInstanceUID", series_uid)]
        fields = includefield_value(includefield)
        if fields:
            params.append(("includefield", fields))
        ctx = Context("qido-instances", purpose, study_uid, series_uid)
        return await self._get_datasets(
            "/instances",
            build_query(params),
            ctx,
            lambda d: Instance.from_json(d, study_uid, series_uid),
        )

    # ---------------------------------------------------------------- WADO-RS
    async def series_metadata(
        self, study_uid: str, series_uid: str, *, purpose: str = "selected"
    ) -> list[Instance]:
        """WADO-RS series /metadata (BulkDataURI / InlineBinary values tolerated)."""
        _uid(study_uid, "StudyInstanceUID")
        _uid(series_uid, "SeriesInstanceUID")
        ctx = Context("wado-metadata", purpose, study_uid, series_uid)
        path = f"/studies/{study_uid}/series/{series_uid}/metadata"
        return await self._get_datasets(
            path, "", ctx, lambda d: Instance.from_json(d, study_uid, series_uid)
        )

    def _frames_url(
        self, study_uid: str, series_uid: str, sop_uid: str, frames: Sequence[int]
    ) -> str:
        _uid(study_uid, "StudyInstanceUID")
        _uid(series_uid, "SeriesInstanceUID")
        _uid(sop_uid, "SOPInstanceUID")
        if not frames or any(int(f) < 1 for f in frames):
            raise InvalidQuery("frame numbers start at 1")
        nums = ",".join(str(int(f)) for f in frames)
        return f"{self.base_url}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/frames/{nums}"

    async def _stream_parts(
        self,
        url: str,
        ctx: Context,
        headers: dict[str, str],
        make: Callable[[Part, str | None, str], R],
    ) -> AsyncGenerator[R, None]:
        """GET a multipart answer; yield `make(part, top transfer syntax, content encoding)`
        for each part as soon as it is complete. Retried only while nothing was yielded."""
        async with self._t.slot():
            n = 0
            while True:
                n += 1
                yielded = False
                try:
                    async with self._t.attempt(url, ctx, headers, n) as (resp, _at):
                        top = resp.headers.get("content-type")
                        parser = MultipartParser.from_content_type(top)
                        top_ts = transfer_syntax_of(top)
                        enc = resp.headers.get("content-encoding", "identity").lower()
                        async for chunk in resp.aiter_bytes():
                            for part in parser.feed(chunk):
                                yielded = True
                                yield make(part, top_ts, enc)
                        for part in parser.close():
                            yield make(part, top_ts, enc)
                        return
                except DicomWebError as err:
                    delay = None if yielded else self._t.retry_delay(err, n)
                    if delay is None:
                        raise
                    await asyncio.sleep(delay)

    async def iter_frames(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        frames: Sequence[int],
        *,
        purpose: str = "selected",
        accept_encoding: str = "identity",
    ) -> AsyncGenerator[FramePart, None]:
        """Frames (1-based numbers) in the stored transfer syntax, each yielded on arrival.

        `accept_encoding` is sent as Accept-Encoding: keep "identity" unless you mean to
        measure gzip (Orthanc gzips frames when offered, at a large cost: ORTHANC-NOTES
        quirk 2); httpx undoes the encoding, FramePart.content_encoding says which it was.
        Close the iterator if you stop early (`contextlib.aclosing`) so that the request
        slot and the connection are released at once.
        """
        url = self._frames_url(study_uid, series_uid, sop_uid, frames)
        ctx = Context("wado-frames", purpose, study_uid, series_uid)
        headers = {**PIXEL_HEADERS, "Accept": FRAMES_ACCEPT, "Accept-Encoding": accept_encoding}
        async with aclosing(self._stream_parts(url, ctx, headers, _frame)) as parts:
            async for part in parts:
                yield part

    async def frames(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        frames: Sequence[int],
        *,
        purpose: str = "selected",
        accept_encoding: str = "identity",
    ) -> list[FramePart]:
        """All the requested frames (see iter_frames)."""
        it = self.iter_frames(
            study_uid, series_uid, sop_uid, frames,
            purpose=purpose, accept_encoding=accept_encoding,
        )  # fmt: skip
        async with aclosing(it) as parts:
            return [p async for p in parts]

    async def iter_series_frames(
        self, study_uid: str, series_uid: str, *, purpose: str = "prefetch"
    ) -> AsyncGenerator[InstanceFrames, None]:
        """Every instance of a series in ONE WADO-RS series retrieval, with its raw frames.

        GET {root}/studies/{st}/series/{se} with Accept `SERIES_ACCEPT` (whole Part 10
        files in their stored syntax) and Accept-Encoding: identity; each part is parsed
        (pydicom, ~0.3 ms a CT slice) and yielded as an InstanceFrames as soon as it is
        complete, in the server's order (not sorted). On Orthanc this streams a 100-slice
        CT series in about the time of 100 REST raw-frame downloads, where one WADO-RS
        frames request per frame costs about twice that.

        Recorded in the request log as one "wado-frames" request (the contract has no
        other kind for pixel data; its URL, without /frames/, tells it apart). Close the
        iterator if you stop early (`contextlib.aclosing`): that closes the stream and
        records the request as cancelled. A part that is not a readable DICOM instance
        or a truncated answer raises MalformedAnswer.
        """
        _uid(study_uid, "StudyInstanceUID")
        _uid(series_uid, "SeriesInstanceUID")
        url = f"{self.base_url}/studies/{study_uid}/series/{series_uid}"
        ctx = Context("wado-frames", purpose, study_uid, series_uid)
        headers = {**PIXEL_HEADERS, "Accept": SERIES_ACCEPT}

        def make(part: Part, top_ts: str | None, _enc: str) -> InstanceFrames:
            return _instance(part, top_ts)

        async with aclosing(self._stream_parts(url, ctx, headers, make)) as parts:
            async for inst in parts:
                yield inst

    async def series_frames(
        self, study_uid: str, series_uid: str, *, purpose: str = "prefetch"
    ) -> list[InstanceFrames]:
        """All the instances of a series with their frames (see iter_series_frames)."""
        it = self.iter_series_frames(study_uid, series_uid, purpose=purpose)
        async with aclosing(it) as parts:
            return [p async for p in parts]

    async def rendered(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        frame: int | None = None,
        *,
        viewport: tuple[int, int] | None = None,
        window: tuple[float, float] | None = None,
        purpose: str = "selected",
    ) -> bytes:
        """A JPEG rendered by the server, of an instance or of one frame (1-based)."""
        url = (
            self._frames_url(study_uid, series_uid, sop_uid, [frame])
            if frame is not None
            else self._frames_url(study_uid, series_uid, sop_uid, [1]).rsplit("/frames/", 1)[0]
        ) + "/rendered"
        params = []
        if viewport:
            params.append(("viewport", f"{int(viewport[0])},{int(viewport[1])}"))
        if window:
            params.append(("window", f"{window[0]:g},{window[1]:g},linear"))
        if params:
            url += "?" + build_query(params)
        ctx = Context("wado-rendered", purpose, study_uid, series_uid)
        host = self._t.host

        def decode(resp: httpx.Response) -> bytes:
            mime, _ = parse_content_type(resp.headers.get("content-type"))
            if mime and not mime.startswith("image/"):
                raise MalformedAnswer(f"{host} answered {mime} instead of an image")
            return resp.content

        return await self._t.get(url, ctx, {**PIXEL_HEADERS, "Accept": "image/jpeg"}, decode)

    # ---------------------------------------------------------------- identity
    async def server_info(self, *, purpose: str = "list") -> ServerInfo:
        """Product and version (Orthanc /system, /plugins/dicom-web); "unknown" elsewhere.

        First a cheap QIDO (`/studies?limit=1`) checks the DICOMweb root itself: it raises
        Unreachable / AuthRefused when the server is down or refuses the credentials. The
        identity probes after it never raise (a proxy may hide Orthanc's REST API).
        """
        server_header = await self._server_header(Context("qido-studies", purpose))
        root = self.base_url.removesuffix("/dicom-web")
        ctx = Context("other", purpose)
        product = version = plugin = "unknown"
        system = await self._probe(f"{root}/system", ctx)
        if isinstance(system, dict) and ("ApiVersion" in system or "DicomAet" in system):
            product, version = "Orthanc", str(system.get("Version") or "unknown")
        elif server_header.lower().startswith("orthanc"):
            product = "Orthanc"
            version = server_header.partition("/")[2].strip() or "unknown"
        if product == "Orthanc":
            info = await self._probe(f"{root}/plugins/dicom-web", ctx)
            if isinstance(info, dict) and info.get("Version"):
                plugin = str(info["Version"])
        return ServerInfo(product, version, plugin)

    async def _probe(self, url: str, ctx: Context) -> Any:
        try:
            resp: httpx.Response = await self._t.get(url, ctx, {"Accept": "application/json"})
            return json.loads(resp.content)
        except (DicomWebError, ValueError):
            return None

    async def _server_header(self, ctx: Context) -> str:
        try:
            url = f"{self.base_url}/studies?limit=1"
            resp: httpx.Response = await self._t.get(url, ctx, JSON_HEADERS)
        except (Unreachable, AuthRefused):
            raise
        except DicomWebError:
            return ""
        return resp.headers.get("server", "")
