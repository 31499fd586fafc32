"""DicomWebClient: QIDO-RS searches, WADO-RS metadata, frames and rendered images.

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
from typing import Any, TypeVar

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

M = TypeVar("M")
FRAMES_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
_UID_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class FramePart:
    """One frame from a WADO-RS frames answer, with its part headers."""

    headers: dict[str, str]
    content_type: str | None
    transfer_syntax: str | None
    data: bytes = field(repr=False)


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


def _frame(part: Part, top_ts: str | None) -> FramePart:
    ct = part.content_type
    return FramePart(part.headers, ct, transfer_syntax_of(ct) or top_ts, part.body)


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

    async def iter_frames(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        frames: Sequence[int],
        *,
        purpose: str = "selected",
    ) -> AsyncGenerator[FramePart, None]:
        """Frames (1-based numbers) in the stored transfer syntax, each yielded on arrival.

        Close the iterator if you stop early (`contextlib.aclosing`) so that the request
        slot and the connection are released at once.
        """
        url = self._frames_url(study_uid, series_uid, sop_uid, frames)
        ctx = Context("wado-frames", purpose, study_uid, series_uid)
        headers = {**PIXEL_HEADERS, "Accept": FRAMES_ACCEPT}
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
                        async for chunk in resp.aiter_bytes():
                            for part in parser.feed(chunk):
                                yielded = True
                                yield _frame(part, top_ts)
                        for part in parser.close():
                            yield _frame(part, top_ts)
                        return
                except DicomWebError as err:
                    delay = None if yielded else self._t.retry_delay(err, n)
                    if delay is None:
                        raise
                    await asyncio.sleep(delay)

    async def frames(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        frames: Sequence[int],
        *,
        purpose: str = "selected",
    ) -> list[FramePart]:
        """All the requested frames (see iter_frames)."""
        it = self.iter_frames(study_uid, series_uid, sop_uid, frames, purpose=purpose)
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
