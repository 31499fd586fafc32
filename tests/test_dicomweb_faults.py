"""Faults with httpx.MockTransport and a tiny asyncio HTTP server: typed errors, retries,
cancellation on the wire, and the request-log record each one leaves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tui.config import ServerSettings
from tui.dicomweb.client import FRAMES_ACCEPT, DicomWebClient
from tui.dicomweb.errors import (
    AuthRefused,
    DicomWebError,
    MalformedAnswer,
    NotFound,
    RequestTimeout,
    ServerError,
    Unreachable,
)
from tui.dicomweb.requestlog import RequestLog

URL = "http://pacs.test/dicom-web"
STUDY = {"0020000D": {"vr": "UI", "Value": ["1.2.3"]}}
Handler = Any


def client(handler: Handler, **kw: object) -> DicomWebClient:
    settings = ServerSettings(url=URL, user="u", password="pw-secret", **kw)  # type: ignore[arg-type]
    return DicomWebClient(settings, transport=httpx.MockTransport(handler), backoff_base=0.001)


def outcomes(c: DicomWebClient) -> list[tuple[int | None, str, int]]:
    return [(r.status, r.outcome, r.attempt) for r in c.log.records()]


@pytest.mark.parametrize(
    ("status", "exc", "text"),
    [
        (401, AuthRefused, "pacs.test refused the credentials (HTTP 401)"),
        (403, AuthRefused, "pacs.test denied access (HTTP 403)"),
        (404, NotFound, "not found on pacs.test (HTTP 404): /dicom-web/studies"),
    ],
)
async def test_http_errors_not_retried(status: int, exc: type[DicomWebError], text: str) -> None:
    async with client(lambda r: httpx.Response(status, text="nope")) as c:
        with pytest.raises(exc) as info:
            await c.search_studies()
    assert info.value.message == text and info.value.status == status
    assert outcomes(c) == [(status, "http-error", 1)]


async def test_server_error_message_is_short_single_line_excerpt() -> None:
    body = "boom\x1b[31m\r\n\tstack:" + "x" * 500
    async with client(lambda r: httpx.Response(500, text=body)) as c:
        with pytest.raises(ServerError) as info:
            await c.search_series("1.2.3")
    msg = info.value.message
    assert msg.startswith("HTTP 500 from pacs.test: boom [31m stack:xxx")
    assert len(msg) <= 160 and "\x1b" not in msg and "\n" not in msg
    assert outcomes(c) == [(500, "http-error", 1)]


async def test_orthanc_json_error_message_used() -> None:
    body = '{"HttpStatus": 400, "Message": "Parameter out of range", "OrthancError": "x"}'
    async with client(lambda r: httpx.Response(400, text=body)) as c:
        with pytest.raises(ServerError, match="HTTP 400 from pacs.test: Parameter out of range$"):
            await c.search_studies()


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
async def test_retry_then_success(status: int) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            return httpx.Response(status)
        return httpx.Response(200, json=[STUDY])

    async with client(handler) as c:
        studies = await c.search_studies()
    assert [s.study_uid for s in studies] == ["1.2.3"]
    assert outcomes(c) == [(status, "http-error", 1), (status, "http-error", 2), (200, "ok", 3)]


async def test_retries_are_bounded() -> None:
    async with client(lambda r: httpx.Response(503, text="busy"), retries=1) as c:
        with pytest.raises(ServerError, match="HTTP 503"):
            await c.search_studies()
    assert outcomes(c) == [(503, "http-error", 1), (503, "http-error", 2)]


async def test_retry_after_respected_when_small_and_not_when_large() -> None:
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(time.perf_counter())
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "0.2"})
        return httpx.Response(200, json=[])

    async with client(handler) as c:
        assert await c.search_studies() == []
    assert calls[1] - calls[0] >= 0.19

    async with client(lambda r: httpx.Response(503, headers={"Retry-After": "120"})) as c:
        with pytest.raises(ServerError):
            await c.search_studies()
    assert len(c.log.records()) == 1


async def test_connect_error_unreachable_after_retries() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    async with client(handler) as c:
        with pytest.raises(Unreachable) as info:
            await c.search_studies()
    assert info.value.message == "cannot reach pacs.test: [Errno 111] Connection refused"
    assert info.value.status is None
    assert outcomes(c) == [(None, "network-error", n) for n in (1, 2, 3)]


async def test_real_refused_port_is_unreachable() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = ServerSettings(url=f"http://127.0.0.1:{port}/dicom-web", retries=0)
    async with DicomWebClient(settings) as c:
        with pytest.raises(Unreachable, match=f"cannot reach 127.0.0.1:{port}"):
            await c.server_info()
    assert outcomes(c) == [(None, "network-error", 1)]


async def test_read_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with client(handler, read_timeout=2.5) as c:
        with pytest.raises(RequestTimeout, match=r"^pacs.test: no answer within 2.5 s$"):
            await c.series_metadata("1.2", "1.2.3")
    rec = c.log.records()
    assert [(r.status, r.outcome, r.kind) for r in rec] == [(None, "timeout", "wado-metadata")]


@pytest.mark.parametrize(
    ("content_type", "body", "match"),
    [
        ("text/html", b"<html><body>Login</body></html>", "HTML page"),
        ("application/json", b"{not json", "not JSON"),
        ("application/dicom+json", b'{"a": 1}', "expected a list"),
        ("application/dicom+json", b"[1, 2]", "expected an object"),
        ("application/dicom+json", b'[{"00100020": {"vr": "LO"}}]', "without its UID"),
    ],
)
async def test_malformed_json_answers(content_type: str, body: bytes, match: str) -> None:
    handler = lambda r: httpx.Response(200, content=body, headers={"Content-Type": content_type})  # noqa: E731
    async with client(handler) as c:
        with pytest.raises(MalformedAnswer, match=match):
            await c.search_studies()
    assert outcomes(c) == [(200, "decode-error", 1)]


def multipart(parts: list[bytes], boundary: str = "BND", close: bool = True) -> bytes:
    out = b""
    for p in parts:
        out += b"--" + boundary.encode() + b"\r\nContent-Type: application/octet-stream\r\n\r\n"
        out += p + b"\r\n"
    return out + (b"--" + boundary.encode() + b"--" if close else b"")


FRAMES_CT = 'multipart/related; type="application/octet-stream"; boundary=BND'


async def test_truncated_multipart_is_malformed() -> None:
    body = multipart([b"frame1", b"frame2"], close=False)
    handler = lambda r: httpx.Response(200, content=body, headers={"Content-Type": FRAMES_CT})  # noqa: E731
    async with client(handler) as c:
        with pytest.raises(MalformedAnswer, match="truncated multipart"):
            await c.frames("1.2", "1.2.3", "1.2.3.4", [1, 2])
    assert outcomes(c) == [(200, "decode-error", 1)]


async def test_frames_headers_and_pixel_requests_ask_identity() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/rendered"):
            return httpx.Response(
                200, content=b"\xff\xd8JPEG", headers={"Content-Type": "image/jpeg"}
            )
        if "/frames/" not in request.url.path:
            return httpx.Response(200, json=[])
        ct = 'multipart/related; type="application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"; boundary=BND'
        return httpx.Response(
            200, content=multipart([b"A" * 10, b"B"]), headers={"Content-Type": ct}
        )

    async with client(handler) as c:
        parts = await c.frames("1.2", "1.2.3", "1.2.3.4", [1, 2], purpose="prefetch")
        jpeg = await c.rendered("1.2", "1.2.3", "1.2.3.4", 2, viewport=(128, 96), window=(40, 400))
        await c.search_studies()
    assert [p.data for p in parts] == [b"A" * 10, b"B"]
    assert parts[0].transfer_syntax == "1.2.840.10008.1.2.1"
    assert parts[0].content_type == "application/octet-stream"
    assert jpeg == b"\xff\xd8JPEG"
    frames_req, rendered_req, qido_req = seen
    assert frames_req.headers["accept"] == FRAMES_ACCEPT
    assert frames_req.headers["accept-encoding"] == "identity"
    assert str(frames_req.url).endswith("/instances/1.2.3.4/frames/1,2")
    assert rendered_req.headers["accept"] == "image/jpeg"
    assert rendered_req.headers["accept-encoding"] == "identity"
    assert rendered_req.url.raw_path.endswith(
        b"/frames/2/rendered?viewport=128,96&window=40,400,linear"
    )
    assert qido_req.headers["accept-encoding"] == "gzip"
    kinds = [(r.kind, r.purpose, r.study_uid, r.series_uid) for r in c.log.records()]
    assert kinds[:2] == [
        ("wado-frames", "prefetch", "1.2", "1.2.3"),
        ("wado-rendered", "selected", "1.2", "1.2.3"),
    ]


async def test_rendered_non_image_is_malformed() -> None:
    handler = lambda r: httpx.Response(200, text="<html/>", headers={"Content-Type": "text/html"})  # noqa: E731
    async with client(handler) as c:
        with pytest.raises(MalformedAnswer, match="instead of an image"):
            await c.rendered("1.2", "1.2.3", "1.2.3.4")
    assert outcomes(c) == [(200, "decode-error", 1)]


async def test_auth_headers_sent_up_front() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    async with client(handler) as c:
        await c.search_studies()
    assert seen[0].headers["authorization"] == "Basic dTpwdy1zZWNyZXQ="  # u:pw-secret
    settings = ServerSettings(url=URL, token="tok-123", headers={"X-Api-Key": "k-456"})
    async with DicomWebClient(settings, transport=httpx.MockTransport(handler)) as c:
        await c.search_studies()
    assert seen[1].headers["authorization"] == "Bearer tok-123"
    assert seen[1].headers["x-api-key"] == "k-456"
    assert len(seen) == 2  # no 401 round trip


async def test_credentials_from_url_userinfo_are_used_and_stripped() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    settings = ServerSettings(url="http://alice:s3cret@pacs.test/dicom-web/")
    async with DicomWebClient(settings, transport=httpx.MockTransport(handler)) as c:
        await c.search_studies()
    assert seen[0].headers["authorization"].startswith("Basic ")
    assert c.log.records()[0].url.startswith("http://pacs.test/dicom-web/studies?")
    assert "s3cret" not in repr(c)


async def test_concurrency_cap() -> None:
    active = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        return httpx.Response(200, json=[])

    log = RequestLog()
    settings = ServerSettings(url=URL, concurrency=3)
    async with DicomWebClient(settings, log, transport=httpx.MockTransport(handler)) as c:
        await asyncio.gather(*(c.search_series("1.2") for _ in range(20)))
    assert peak == 3 and len(log.records()) == 20 and log.in_flight == 0


async def test_server_info_non_orthanc_and_orthanc() -> None:
    def other(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/system":
            return httpx.Response(404, text="no")
        return httpx.Response(200, json=[], headers={"Server": "nginx"})

    async with client(other) as c:
        info = await c.server_info()
    assert (info.product, info.version, info.dicomweb, info.label) == ("unknown",) * 4

    def orthanc(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/system":
            return httpx.Response(200, json={"Name": "x", "Version": "1.12.3", "ApiVersion": 24})
        return httpx.Response(200, json={"ID": "dicom-web", "Version": "1.15"})

    async with client(orthanc) as c:
        info = await c.server_info()
    assert info.label == "Orthanc 1.12.3" and info.dicomweb == "1.15"
    assert [r.kind for r in c.log.records()] == ["qido-studies", "other", "other"]

    async with client(lambda r: httpx.Response(401)) as c:
        with pytest.raises(AuthRefused):
            await c.server_info()

    def rest_hidden(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/dicom-web/"):
            return httpx.Response(200, json=[])
        return httpx.Response(403)

    async with client(rest_hidden) as c:
        assert (await c.server_info()).product == "unknown"


# ------------------------------------------------------------------ a tiny real HTTP server
class RawServer:
    """Answers each request with `script(reader, writer)`; counts connections closed by us."""

    def __init__(
        self, script: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    ):
        self.script = script
        self.client_closed = asyncio.Event()
        self.requests = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            await self.script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/dicom-web"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()


HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: multipart/related; "
    b'type="application/octet-stream"; boundary=BND\r\nContent-Length: 100000\r\n\r\n'
)


async def test_parts_arrive_incrementally_and_cancel_closes_connection() -> None:
    release = asyncio.Event()
    srv: RawServer

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + multipart([b"first"], close=False) + b"--BND\r\n\r\npartial")
        await writer.drain()
        await release.wait()  # never set: the client must cancel
        if await reader.read(1) == b"":
            srv.client_closed.set()

    async with RawServer(script) as srv:
        settings = ServerSettings(url=srv.url, read_timeout=10)
        async with DicomWebClient(settings) as c:
            it = c.iter_frames("1.2", "1.2.3", "1.2.3.4", [1, 2])
            first = await asyncio.wait_for(anext(it), 5)
            assert first.data == b"first"
            task = asyncio.ensure_future(anext(it))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await it.aclose()
            release.set()
            await asyncio.wait_for(srv.client_closed.wait(), 5)
            rec = c.log.records()
            assert [(r.status, r.outcome, r.kind) for r in rec] == [
                (200, "cancelled", "wado-frames")
            ]
            assert rec[0].bytes > 0 and rec[0].ttfb_ms is not None and c.log.in_flight == 0


async def test_cancel_before_headers_records_cancelled() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    async with RawServer(script) as srv, DicomWebClient(ServerSettings(url=srv.url)) as c:
        task = asyncio.ensure_future(c.search_studies())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert outcomes(c) == [(None, "cancelled", 1)]


async def test_connection_dropped_mid_body_is_retried_then_truncated() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HEAD + b"--BND\r\n\r\nonly a piece of the fra")
        await writer.drain()

    async with RawServer(script) as srv:
        settings = ServerSettings(url=srv.url, retries=1)
        async with DicomWebClient(settings, backoff_base=0.001) as c:
            with pytest.raises(MalformedAnswer, match="truncated answer from 127.0.0.1"):
                await c.frames("1.2", "1.2.3", "1.2.3.4", [1])
    assert outcomes(c) == [(200, "network-error", 1), (200, "network-error", 2)]
    assert srv.requests == 2


async def test_real_read_timeout() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(2)

    async with RawServer(script) as srv:
        settings = ServerSettings(url=srv.url, read_timeout=0.2)
        async with DicomWebClient(settings) as c:
            with pytest.raises(RequestTimeout, match="no answer within 0.2 s"):
                await c.search_studies()
    assert outcomes(c) == [(None, "timeout", 1)]


async def test_started_notifications_match_records() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503 if len(calls) == 1 else 200, json=[])

    log = RequestLog()
    started: list[object] = []
    log.subscribe_started(started.append)
    settings = ServerSettings(url=URL)
    transport = httpx.MockTransport(handler)
    async with DicomWebClient(settings, log, transport=transport, backoff_base=0.001) as c:
        await c.search_series("1.2")
    assert len(started) == len(log.records()) == 2 and log.in_flight == 0


async def test_server_info_from_server_header() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/system":
            return httpx.Response(200, text="<html>proxy page</html>")
        if request.url.path == "/plugins/dicom-web":
            return httpx.Response(403)
        return httpx.Response(200, json=[], headers={"Server": "Orthanc/1.9.7"})

    async with client(handler) as c:
        info = await c.server_info()
    assert (info.product, info.version, info.dicomweb) == ("Orthanc", "1.9.7", "unknown")


async def test_pages_stop_on_a_short_or_empty_page() -> None:
    offsets = []

    def handler(request: httpx.Request) -> httpx.Response:
        params = dict(p.split("=", 1) for p in request.url.query.decode().split("&"))
        offset = int(params.get("offset", 0))
        offsets.append(offset)
        uids = [f"1.{n}" for n in range(offset, min(offset + 2, 4))]
        return httpx.Response(200, json=[{"0020000D": {"vr": "UI", "Value": [u]}} for u in uids])

    async with client(handler) as c:
        pages = [[s.study_uid for s in p] async for p in c.iter_study_pages(page_size=2)]
    assert pages == [["1.0", "1.1"], ["1.2", "1.3"]] and offsets == [0, 2, 4]


async def test_total_ms_times_the_request_not_the_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tui.dicomweb import client as client_mod

    real = client_mod.Study.from_json

    def slow(ds: object) -> client_mod.Study:
        time.sleep(0.3)
        return real(ds)

    monkeypatch.setattr(client_mod.Study, "from_json", staticmethod(slow))
    async with client(lambda r: httpx.Response(200, json=[STUDY])) as c:
        t0 = time.perf_counter()
        await c.search_studies()
        elapsed_ms = (time.perf_counter() - t0) * 1000
    (rec,) = c.log.records()
    assert elapsed_ms >= 300 and rec.total_ms < 150 and rec.outcome == "ok"
    assert rec.ttfb_ms is not None and rec.ttfb_ms <= rec.total_ms
