"""TLS verification options against a local HTTPS server, and model decoding under fuzzing."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.config import ServerSettings
from tui.dicomweb.client import DicomWebClient
from tui.dicomweb.errors import DicomWebError, MalformedAnswer, Unreachable
from tui.dicomweb.model import Instance, Series, Study


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, crt


async def https_server(key: Path, crt: Path) -> tuple[asyncio.Server, str]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(crt, key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json\r\n"
                b"Content-Length: 2\r\nConnection: close\r\n\r\n[]"
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    return server, f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/dicom-web"


async def test_tls_verify_with_ca_file_without_and_off(cert: tuple[Path, Path]) -> None:
    key, crt = cert
    server, url = await https_server(key, crt)
    try:
        async with DicomWebClient(ServerSettings(url=url, ca_file=str(crt))) as c:
            assert await c.search_studies() == []
        async with DicomWebClient(ServerSettings(url=url, verify_tls=False)) as c:
            assert await c.search_studies() == []
        async with DicomWebClient(ServerSettings(url=url, retries=0)) as c:
            with pytest.raises(Unreachable, match="cannot reach 127.0.0.1"):
                await c.search_studies()
    finally:
        server.close()


def test_missing_ca_file_is_a_clear_error(tmp_path: Path) -> None:
    settings = ServerSettings(url="https://pacs.test/dicom-web", ca_file=str(tmp_path / "no.pem"))
    with pytest.raises(DicomWebError, match="cannot load the CA file"):
        DicomWebClient(settings)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=10,
)
tags = st.sampled_from(
    ["0020000D", "0020000E", "00080018", "00100010", "00080020", "00280010", "00281050",
     "00200032", "00280008", "00080061", "00201206", "7FE00010", "00080008"]
)  # fmt: skip
element = st.dictionaries(st.sampled_from(["vr", "Value", "BulkDataURI"]), json_values, max_size=3)
dataset = st.dictionaries(tags, element | json_values, max_size=10) | json_values


@settings(max_examples=400, deadline=None)
@given(ds=dataset)
def test_model_never_crashes_on_odd_json(ds: object) -> None:
    """Any JSON gives a model object or MalformedAnswer, never another exception."""
    for build in (Study.from_json, lambda d: Series.from_json(d, "1"),
                  lambda d: Instance.from_json(d, "1", "2")):  # fmt: skip
        with contextlib.suppress(MalformedAnswer):
            build(ds)
