"""An asyncio-native network backend for httpcore (the sockets under our httpx client).

httpcore's default backend on asyncio goes through anyio: every read opens a cancel scope for
its timeout, yields to the event loop once even when data is waiting, and pauses / resumes
the socket's reader (two epoll_ctl calls) around each wait, in 64 KiB steps. A 512 KiB frame
took ~18 such reads; on a two-core machine shared with the server that client CPU was most of
the difference between WADO-RS frames and plain REST downloads.

This backend keeps one asyncio Protocol per connection that reads continuously into a queue
(pausing the socket only when more than 1 MiB is waiting), arms a timeout only when a read
must actually wait, and answers `is_readable` (httpcore's "did the server close this idle
keep-alive connection?") from that queue instead of polling the socket. Errors are httpcore's
own exception types, so httpx maps them exactly as with the default backend.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Any

import httpcore

_HIGH_WATER = 1 << 20  # bytes queued before the socket's reader is paused
_LOW_WATER = 1 << 18  # ... and resumed


class _Protocol(asyncio.Protocol):
    """Queues what arrives; wakes the one reader that may be waiting."""

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.queued = 0
        self.waiter: asyncio.Future[None] | None = None
        self.drained: asyncio.Future[None] | None = None
        self.closed = False
        self.error: BaseException | None = None
        self.paused = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.queued += len(data)
        if self.queued > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False  # let the transport close itself

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.error = exc
        self._wake()
        self.resume_writing()

    def pause_writing(self) -> None:
        self.drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        drained, self.drained = self.drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection (plain TCP, or TLS after `start_tls`)."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Up to `max_bytes` bytes; b"" at end of stream."""
        p = self._protocol
        if not p.chunks:
            if not p.closed:
                p.waiter = asyncio.get_running_loop().create_future()
                try:
                    async with asyncio.timeout(timeout):
                        await p.waiter
                except TimeoutError:
                    raise httpcore.ReadTimeout("timed out reading from the server") from None
                finally:
                    p.waiter = None
            if not p.chunks:
                if p.error is not None:
                    raise httpcore.ReadError(str(p.error) or type(p.error).__name__)
                return b""
        chunk = p.chunks.popleft()
        if len(chunk) > max_bytes:
            p.chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        p.queued -= len(chunk)
        if p.paused and p.queued < _LOW_WATER and not p.closed:
            p.paused = False
            self._transport.resume_reading()
        return chunk

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send `buffer`, waiting only when the transport's write buffer is full."""
        if not buffer:
            return
        p = self._protocol
        if p.closed or self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        if p.drained is not None:
            try:
                async with asyncio.timeout(timeout):
                    await p.drained
            except TimeoutError:
                raise httpcore.WriteTimeout("timed out writing to the server") from None
            if p.closed and p.error is not None:
                raise httpcore.WriteError(str(p.error) or type(p.error).__name__)

    async def aclose(self) -> None:
        """Close the connection (without waiting for the peer)."""
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Upgrade to TLS; the same protocol then receives the decrypted bytes."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            self._transport.close()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
        except (OSError, ssl.SSLError) as exc:
            self._transport.close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from None
        if transport is None:  # the connection closed during the handshake
            raise httpcore.ConnectError("connection closed during the TLS handshake")
        self._protocol.transport = transport  # type: ignore[assignment]
        return AsyncioStream(transport, self._protocol)  # type: ignore[arg-type]

    def get_extra_info(self, info: str) -> Any:
        """What httpcore asks for: is_readable, ssl_object, client_addr, server_addr, socket."""
        if info == "is_readable":  # data or EOF on an idle connection: the server closed it
            return bool(self._protocol.chunks) or self._protocol.closed
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info in ("ssl_object", "socket"):
            return self._transport.get_extra_info(info)
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend on plain asyncio transports (see the module docstring)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Open a TCP connection (TCP_NODELAY is asyncio's default)."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _Protocol, host, port, local_addr=(local_address, 0) if local_address else None
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection to {host}:{port} in time") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from None
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(transport, protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Open a Unix-socket connection."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_unix_connection(_Protocol, path)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection to {path} in time") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from None
        return AsyncioStream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(seconds)
