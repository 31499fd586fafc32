"""A small latency-injecting HTTP/1.1 proxy in front of the test Orthanc.

Rules match the request path (regex); each can add a delay, bound how many matching
requests are served at once (a semaphore, like a storage-bound backend) and inject a fault
(answer a fixed status). The delay is spent while holding the semaphore. A client that hangs
up while its request waits is noticed and the request is dropped (never forwarded).
The proxy stops itself after `max_lifetime` seconds; use it as an async context manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
    "content-length",
}

METADATA_PATTERN = r"(/series/[^/?]+/metadata|/instances)(\?|$)"  # QIDO instances, WADO metadata


def series_metadata_pattern(series_uid: str) -> str:
    """A rule pattern for one series' metadata: WADO `/metadata` and QIDO `/instances`, in the
    nested form (`/series/UID/instances`) and the flat one (`/instances?...SeriesInstanceUID=UID`)."""
    uid = re.escape(series_uid)
    return (
        rf"/series/{uid}/(metadata|instances)(\?|$)"
        rf"|/instances\?(.*&)?SeriesInstanceUID={uid}(&|$)"
    )


@dataclass
class Rule:
    """What to do with requests whose path (with query) matches `pattern` (re.search)."""

    pattern: str
    delay: float = 0.0
    max_concurrent: int | None = None
    fail_status: int | None = None
    _sem: asyncio.Semaphore | None = field(default=None, repr=False)

    def matches(self, target: str) -> bool:
        """True when the request target matches."""
        return re.search(self.pattern, target) is not None

    def semaphore(self) -> asyncio.Semaphore | None:
        """The rule's semaphore (created on first use, in the running loop)."""
        if self.max_concurrent is None:
            return None
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.max_concurrent)
        return self._sem


@dataclass
class Served:
    """One request as the proxy saw it."""

    method: str
    target: str
    started: float
    ended: float | None = None
    status: int | None = None
    forwarded: bool = False
    dropped: bool = False  # the client hung up before the answer


class LatencyProxy:
    """Forwards to `upstream` (scheme://host:port) applying the first matching rule."""

    def __init__(
        self, upstream: str, rules: list[Rule] | None = None, *, max_lifetime: float = 600.0
    ) -> None:
        """Proxy for `upstream` (any path part is ignored); `rules` checked in order."""
        parts = urlsplit(upstream)
        self.upstream = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        self.rules: list[Rule] = list(rules or [])
        self.max_lifetime = max_lifetime
        self.served: list[Served] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._client: httpx.AsyncClient | None = None
        self._stopper: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._answers: set[asyncio.Task[Any]] = set()

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> LatencyProxy:
        """Listen on 127.0.0.1 (a free port)."""
        self._client = httpx.AsyncClient(
            timeout=60.0,
            limits=httpx.Limits(
                max_connections=64, max_keepalive_connections=16, keepalive_expiry=0.5
            ),
        )
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._stopper = asyncio.get_running_loop().create_task(self._stop_later())
        return self

    async def _stop_later(self) -> None:
        await asyncio.sleep(self.max_lifetime)
        await self.stop(from_timer=True)

    async def stop(self, *, from_timer: bool = False) -> None:
        """Close the listener, drop open connections, close the upstream client."""
        if self._stopper is not None and not from_timer:
            self._stopper.cancel()
        self._stopper = None
        if self._server is not None:
            self._server.close()
            self._server = None
        # Drop every connection at once, then cancel what is still running: answers waiting
        # on a rule's delay or semaphore first, so no handler waits on one of them.
        for writer in self._writers.values():
            writer.transport.abort()
        for task in [*self._answers, *self._handlers]:
            task.cancel()
        pending = {*self._answers, *self._handlers}
        if pending:
            # Bounded: a teardown must never hang on a connection the peer left half-open.
            await asyncio.wait(pending, timeout=3.0)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> LatencyProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def url(self, upstream_url: str) -> str:
        """`upstream_url` (e.g. the DICOMweb root) rewritten to go through the proxy."""
        parts = urlsplit(upstream_url)
        return urlunsplit((parts.scheme, f"127.0.0.1:{self.port}", parts.path, parts.query, ""))

    def rule_for(self, target: str) -> Rule | None:
        """The first rule matching `target`."""
        return next((r for r in self.rules if r.matches(target)), None)

    def reset_stats(self) -> None:
        """Forget what was served."""
        self.served.clear()
        self.max_in_flight = self.in_flight

    # -- serving -------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers[task] = writer
        try:
            while True:
                head = await _read_head(reader)
                if head is None:
                    break
                method, target, headers = head
                body = b""
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    body = await reader.readexactly(length)
                keep = await self._serve(method, target, headers, body, reader, writer)
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Stopping: drop the connection now. A graceful close would wait for buffered
            # bytes to reach a client that may no longer read them, and hang the teardown.
            writer.transport.abort()
        finally:
            self._handlers.discard(task)
            self._writers.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2.0)

    async def _serve(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        rec = Served(method, target, time.monotonic())
        self.served.append(rec)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            rule = self.rule_for(target)
            answer = await _until_hangup(
                reader, self._answer(rule, method, target, headers, body, rec)
            )
            if answer is None:
                rec.dropped = True
                return False
            status, reason, out_headers, content = answer
            rec.status = status
            lines = [f"HTTP/1.1 {status} {reason}"]
            lines += [f"{k}: {v}" for k, v in out_headers]
            lines.append(f"Content-Length: {len(content)}")
            close = headers.get("connection", "").lower() == "close"
            lines.append("Connection: close" if close else "Connection: keep-alive")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + content)
            await writer.drain()
            return not close
        finally:
            rec.ended = time.monotonic()
            self.in_flight -= 1

    async def _answer(
        self,
        rule: Rule | None,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        rec: Served,
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        task = asyncio.current_task()
        if task is not None:
            self._answers.add(task)
            task.add_done_callback(self._answers.discard)
        sem = rule.semaphore() if rule else None
        async with sem if sem is not None else contextlib.nullcontext():
            if rule is not None and rule.delay > 0:
                await asyncio.sleep(rule.delay)
            if rule is not None and rule.fail_status is not None:
                return (
                    rule.fail_status,
                    "Injected Fault",
                    [("Content-Type", "text/plain")],
                    b"injected fault from latency proxy",
                )
            assert self._client is not None
            fwd = {k: v for k, v in headers.items() if k not in HOP_BY_HOP and k != "host"}
            rec.forwarded = True
            req = self._client.build_request(
                method, self.upstream + target, headers=fwd, content=body or None
            )
            for attempt in (1, 2):
                try:
                    resp = await self._client.send(req, stream=True)
                    try:
                        content = b"".join([chunk async for chunk in resp.aiter_raw()])
                    finally:
                        await resp.aclose()
                    break
                except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                    # Orthanc closes idle keep-alive connections after 1 s: one retry
                    if attempt == 2:
                        return (
                            502,
                            "Bad Gateway",
                            [("Content-Type", "text/plain")],
                            b"latency proxy: upstream connection failed",
                        )
            out = [(k, v) for k, v in resp.headers.multi_items() if k.lower() not in HOP_BY_HOP]
            return resp.status_code, resp.reason_phrase or "OK", out, content


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]] | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = raw.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return method, target, headers


async def _until_hangup(reader: asyncio.StreamReader, coro):  # type: ignore[no-untyped-def]
    """Run `coro`; if the client closes its connection first, cancel it and return None."""
    work = asyncio.ensure_future(coro)
    watch = asyncio.ensure_future(reader.read(1))
    try:
        done, _ = await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
        if work in done:
            return work.result()
        # the client sent EOF (or unexpected bytes) while waiting: drop the request
        work.cancel()
        with contextlib.suppress(BaseException):
            await work
        return None
    finally:
        for t in (work, watch):
            if not t.done():
                t.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(work, watch, return_exceptions=True)
