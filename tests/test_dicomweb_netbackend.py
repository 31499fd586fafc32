"""The client's sockets go through our asyncio network backend (netbackend.py).

httpx has no public option for an httpcore network backend, so the transport swaps the pool
of httpx's own transport; if an httpx upgrade renamed that attribute, the swap would silently
do nothing. These tests fail loudly instead, and check the backend against the real server:
keep-alive reuse, a large body, and the server closing idle connections (after 1 s)."""

from __future__ import annotations

import asyncio

from tui import sample
from tui.config import ServerSettings
from tui.dicomweb import DicomWebClient, RequestLog
from tui.dicomweb.netbackend import AsyncioBackend

CT = sample.STUDIES["ct"]
CT20 = sample.SERIES["ct20"]


async def test_requests_use_the_asyncio_backend(
    server_settings: ServerSettings, monkeypatch
) -> None:
    connects: list[tuple[str, int]] = []
    original = AsyncioBackend.connect_tcp

    async def counting(self, host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        connects.append((host, port))
        return await original(self, host, port, *args, **kwargs)

    monkeypatch.setattr(AsyncioBackend, "connect_tcp", counting)
    async with DicomWebClient(server_settings, RequestLog()) as client:
        series = await client.search_series(CT.study_uid)
        frames = await client.frames(CT.study_uid, CT20.series_uid, CT20.sop_uid(0), [1])
        again = await client.search_series(CT.study_uid)
        assert len(frames[0].data) == 512 * 512 * 2  # a large body read through the backend
        assert [s.series_uid for s in series] == [s.series_uid for s in again]
        assert len(connects) == 1  # one connection, kept alive across the three requests
        await asyncio.sleep(1.3)  # Orthanc closes idle keep-alive connections after 1 s
        assert len(await client.search_series(CT.study_uid)) == len(series)
        assert len(connects) == 2  # the closed connection was noticed and replaced
