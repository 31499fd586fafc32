"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.latency_proxy import LatencyProxy
    from tui.config import ServerSettings


async def wait_until(cond: Callable[[], bool], timeout: float = 5.0, what: str = "") -> float:
    """Await `cond()` becoming true (polled every 5 ms); returns the seconds it took."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or cond}")
        await asyncio.sleep(0.005)
    return time.monotonic() - t0


def via(proxy: LatencyProxy, server: ServerSettings, **kw: Any) -> ServerSettings:
    """The server settings rewritten to go through the proxy (`kw` replaces other fields)."""
    return dataclasses.replace(server, url=proxy.url(server.url), **kw)
