"""The password, token and extra-header values never reach the request log, the JSON-lines
file, log output, error text, or the repr of the client, settings and exceptions."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from tui.config import ServerSettings
from tui.dicomweb.client import DicomWebClient
from tui.dicomweb.errors import DicomWebError
from tui.dicomweb.requestlog import JsonLinesSink, RequestLog

PASSWORD = "Pa55-w0rd-XYZZY"
TOKEN = "tok-QWERTY-98765"
HEADER_VALUE = "hdr-val-ASDFG"
B64 = "dXNlcjpQYTU1LXcwcmQtWFlaWlk="  # base64 of user:Pa55-w0rd-XYZZY


def echo(request: httpx.Request) -> httpx.Response:
    """A hostile server that echoes the request headers into errors and redirects."""
    leak = " ".join(f"{k}={v}" for k, v in request.headers.items())
    path = request.url.path
    if path.endswith("/system"):
        return httpx.Response(500, text=f"error: {leak}")
    if "series" in path:
        return httpx.Response(404, text=leak)
    if "frames" in path:
        raise httpx.ConnectError(f"refused {leak}", request=request)
    return httpx.Response(401, text=leak)


def assert_clean(text: str) -> None:
    for secret in (PASSWORD, TOKEN, HEADER_VALUE, B64):
        assert secret not in text


@pytest.mark.parametrize(
    "settings",
    [
        ServerSettings(
            url="http://pacs.test/dicom-web",
            user="user",
            password=PASSWORD,
            headers={"X-Key": HEADER_VALUE},
        ),
        ServerSettings(
            url="http://pacs.test/dicom-web", token=TOKEN, headers={"X-Key": HEADER_VALUE}
        ),
        ServerSettings(url=f"http://user:{PASSWORD}@pacs.test/dicom-web"),
    ],
)
async def test_secrets_never_leak(
    settings: ServerSettings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "log.jsonl"
    log = RequestLog()
    log.subscribe(JsonLinesSink(str(path)))
    texts = [repr(settings)] if "@" not in settings.url else []
    async with DicomWebClient(
        settings, log, transport=httpx.MockTransport(echo), backoff_base=0.001
    ) as c:
        texts.append(repr(c))
        calls = [
            c.server_info(),
            c.search_studies(),
            c.search_series("1.2"),
            c.frames("1.2", "1.2.3", "1.2.3.4", [1]),
            c.series_metadata("1.2", "1.2.3"),
        ]
        for call in calls:
            try:
                await call
            except DicomWebError as exc:
                texts += [str(exc), repr(exc), exc.message, repr(exc.args)]
    assert len(texts) > 8
    for t in texts:
        assert_clean(t)
    assert_clean(path.read_text())
    assert_clean(repr([r.to_json() for r in log.records()]))
    assert_clean(caplog.text)
    assert len(log.records()) >= 5


async def test_secrets_never_leak_real_orthanc(
    server_settings: ServerSettings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from dataclasses import replace

    caplog.set_level(logging.DEBUG)
    path = tmp_path / "log.jsonl"
    log = RequestLog()
    log.subscribe(JsonLinesSink(str(path)))
    secret = server_settings.password or ""
    assert len(secret) >= 6
    texts = [repr(server_settings)]
    for settings in (
        server_settings,
        replace(server_settings, token=TOKEN),
        replace(server_settings, password=PASSWORD),
    ):
        async with DicomWebClient(settings, log) as c:
            texts.append(repr(c))
            try:
                await c.server_info()
                await c.search_studies()
            except DicomWebError as exc:
                texts += [str(exc), repr(exc)]
    everything = "\n".join(texts) + path.read_text() + caplog.text
    assert secret not in everything
    assert_clean(everything)
    assert [r.status for r in log.records()][-2:] == [401, 401]
