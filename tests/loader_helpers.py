"""Helpers shared by the loader tests (not a test module)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

METADATA_KINDS = ("qido-instances", "wado-metadata")


async def wait_until(cond: Callable[[], bool], timeout: float = 5.0, what: str = "") -> float:
    """Await `cond()` becoming true (polled every 5 ms); returns the seconds it took."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or cond}")
        await asyncio.sleep(0.005)
    return time.monotonic() - t0
