"""The HTTP machinery under DicomWebClient: one httpx.AsyncClient, auth, attempts, retries.

Every attempt is timed (time to first byte from httpx's `trace` extension) and recorded in
the RequestLog, whatever its end: ok, HTTP error, timeout, network error, decode error or
cancellation. httpx exceptions never escape: they become the typed errors of errors.py, whose
messages name the host and status but never a credential.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import json
import logging
import random
import ssl
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpcore
import httpx

from tui.config import ServerSettings, split_credentials

from .errors import (
    AuthRefused,
    DicomWebError,
    MalformedAnswer,
    NotFound,
    RequestTimeout,
    ServerError,
    Unreachable,
    excerpt,
)
from .netbackend import AsyncioBackend
from .requestlog import RequestLog, RequestRecord, StartedRequest, utc_timestamp

log = logging.getLogger(__name__)

# httpcore runs `import sniffio` several times per request; when sniffio is not installed the
# failed import is not cached and costs ~50 us of sys.path scanning each time. Recording it as
# absent keeps the behaviour (ImportError -> asyncio) and removes that cost.
if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]
T = TypeVar("T")


def _identity(resp: httpx.Response) -> httpx.Response:
    return resp


RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})
MAX_RETRY_AFTER = 5.0  # seconds; a longer Retry-After ends the retries
PIXEL_HEADERS = {"Accept-Encoding": "identity"}
JSON_HEADERS = {"Accept": "application/dicom+json", "Accept-Encoding": "gzip"}


@dataclass
class Context:
    """What a request is for, as recorded in the request log."""

    kind: str = "other"
    purpose: str = "list"
    study_uid: str | None = None
    series_uid: str | None = None


@dataclass
class Attempt:
    """Timing and byte counts of one HTTP attempt."""

    attempt: int
    start: float = field(default_factory=time.perf_counter)
    ts: str = field(default_factory=utc_timestamp)
    ttfb_ms: float | None = None
    status: int | None = None
    outcome: str = "ok"
    bytes: int = 0
    end: float | None = None  # when the body was in (decoding after it is not timed)

    async def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpx/httpcore trace callback: time to response headers complete."""
        if event.endswith("receive_response_headers.complete") and self.ttfb_ms is None:
            self.ttfb_ms = (time.perf_counter() - self.start) * 1000.0


def auth_headers(server: ServerSettings, user: str | None, password: str | None) -> dict[str, str]:
    """Authorization (basic, sent up front, or bearer) plus the extra headers."""
    headers = dict(server.headers or {})
    if server.token:
        headers["Authorization"] = f"Bearer {server.token}"
    elif user is not None:
        raw = f"{user}:{password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
    return headers


def _verify(server: ServerSettings) -> bool | ssl.SSLContext:
    if server.ca_file:
        try:
            return ssl.create_default_context(cafile=server.ca_file)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise DicomWebError(
                f"cannot load the CA file {server.ca_file}: {reason}", outcome="network-error"
            ) from None
    return bool(server.verify_tls)


def _asyncio_transport(
    verify: bool | ssl.SSLContext, limits: httpx.Limits, http2: bool
) -> httpx.AsyncHTTPTransport:
    """httpx's own transport (request/response mapping, exception mapping), with its
    connection pool on the asyncio network backend of netbackend.py instead of anyio's."""
    ssl_context = verify if isinstance(verify, ssl.SSLContext) else None
    if ssl_context is None:
        ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
    transport = httpx.AsyncHTTPTransport(
        verify=ssl_context, limits=limits, http2=http2, trust_env=False
    )
    transport._pool = httpcore.AsyncConnectionPool(  # httpx offers no network_backend option
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=http2,
        network_backend=AsyncioBackend(),
    )
    return transport


class Transport:
    """One httpx.AsyncClient for one server, with a cap on requests in flight."""

    def __init__(
        self,
        server: ServerSettings,
        log: RequestLog | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff_base: float = 0.2,
    ) -> None:
        self.server = server
        self.base_url, url_user, url_password = split_credentials(server.url)
        self.host = urlsplit(self.base_url).netloc or self.base_url
        self.log = log if log is not None else RequestLog()
        self.backoff_base = backoff_base
        self.retries = max(0, server.retries)
        user = server.user if server.user is not None else url_user
        password = server.password if server.password is not None else url_password
        cap = max(1, server.concurrency)
        self._sem = asyncio.Semaphore(cap)
        self.http2 = transport is None and importlib.util.find_spec("h2") is not None
        headers = auth_headers(server, user, password)
        # Secrets to scrub from any text we pass on (a server may echo request headers).
        self._secrets = sorted(
            {v for v in (password, server.token, *headers.values()) if v and len(v) >= 3}
            | {v.split(" ", 1)[1] for k, v in headers.items() if k == "Authorization"},
            key=len,
            reverse=True,
        )
        limits = httpx.Limits(max_connections=cap, max_keepalive_connections=cap)
        verify = _verify(server)
        if transport is None:
            transport = _asyncio_transport(verify, limits, self.http2)
        self._http = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(
                connect=server.connect_timeout,
                read=server.read_timeout,
                write=server.read_timeout,
                pool=server.connect_timeout + server.read_timeout,
            ),
            limits=limits,
            verify=verify,
            http2=self.http2,
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )

    def __repr__(self) -> str:
        return f"Transport({self.base_url!r})"

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    def redact(self, text: str) -> str:
        """`text` with every credential and extra-header value replaced by ***."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def retry_delay(self, err: DicomWebError, attempt: int) -> float | None:
        """Seconds to wait before another attempt, or None when the error is final."""
        if not err.retryable or attempt > self.retries:
            return None
        if err.retry_after is not None:
            return err.retry_after if err.retry_after <= MAX_RETRY_AFTER else None
        return self.backoff_base * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the `concurrency` request slots."""
        async with self._sem:
            yield

    @asynccontextmanager
    async def attempt(
        self, url: str, ctx: Context, headers: Mapping[str, str], n: int
    ) -> AsyncIterator[tuple[httpx.Response, Attempt]]:
        """One GET, streaming: yields the open 2xx response; records the attempt on exit.

        Errors raised by the caller's body handling (e.g. MalformedAnswer) are recorded
        with their outcome; httpx errors are mapped to typed errors.
        """
        at = Attempt(n)
        self.log.started(
            StartedRequest("GET", url, ctx.kind, ctx.purpose, ctx.study_uid, ctx.series_uid, n)
        )
        resp: httpx.Response | None = None
        try:
            try:
                req = self._http.build_request(
                    "GET", url, headers=headers, extensions={"trace": at.trace}
                )
                resp = await self._http.send(req, stream=True)
            except httpx.HTTPError as exc:
                raise self._map_transport(exc, before_response=True) from None
            at.status = resp.status_code
            if at.ttfb_ms is None:  # transports without httpcore tracing (e.g. MockTransport)
                at.ttfb_ms = (time.perf_counter() - at.start) * 1000.0
            if resp.status_code >= 400:
                raise await self._http_error(resp)
            try:
                yield resp, at
            except httpx.HTTPError as exc:
                raise self._map_transport(exc, before_response=False) from None
        except DicomWebError as err:
            at.outcome = err.outcome
            raise
        except (asyncio.CancelledError, GeneratorExit):
            at.outcome = "cancelled"
            raise
        except BaseException:
            at.outcome = "network-error"
            raise
        finally:
            if resp is not None:
                at.bytes = resp.num_bytes_downloaded
                await _close(resp)
            self.log.add(
                RequestRecord(
                    ts=at.ts,
                    method="GET",
                    url=url,
                    kind=ctx.kind,
                    purpose=ctx.purpose,
                    study_uid=ctx.study_uid,
                    series_uid=ctx.series_uid,
                    status=at.status,
                    outcome=at.outcome,
                    bytes=at.bytes,
                    ttfb_ms=at.ttfb_ms,
                    total_ms=((at.end or time.perf_counter()) - at.start) * 1000.0,
                    attempt=n,
                )  # fmt: skip
            )

    async def get(
        self,
        url: str,
        ctx: Context,
        headers: Mapping[str, str],
        decode: Callable[[httpx.Response], T] = _identity,  # type: ignore[assignment]
    ) -> T:
        """GET with retries; `decode(response)` (body read) runs inside the recorded attempt,
        so a MalformedAnswer it raises is recorded as a decode-error (and not retried)."""
        async with self.slot():
            n = 0
            while True:
                n += 1
                try:
                    async with self.attempt(url, ctx, headers, n) as (resp, at):
                        await resp.aread()
                        at.end = time.perf_counter()
                        try:
                            return decode(resp)
                        except DicomWebError:
                            raise
                        except Exception as exc:  # a decoder bug or an answer it did not foresee
                            raise MalformedAnswer(
                                f"could not decode the answer from {self.host} "
                                f"({type(exc).__name__})"
                            ) from None
                except DicomWebError as err:
                    delay = self.retry_delay(err, n)
                    if delay is None:
                        raise
                    log.debug("retrying %s in %.2f s after %s", url, delay, err.message)
                    await asyncio.sleep(delay)

    def _map_transport(self, exc: httpx.HTTPError, *, before_response: bool) -> DicomWebError:
        detail = excerpt(self.redact(str(exc) or type(exc).__name__), 80)
        if isinstance(exc, httpx.ConnectTimeout):
            return RequestTimeout(
                f"{self.host}: no connection within {self.server.connect_timeout:g} s",
                retryable=True,
            )
        if isinstance(exc, httpx.TimeoutException):
            return RequestTimeout(f"{self.host}: no answer within {self.server.read_timeout:g} s")
        if isinstance(exc, httpx.ConnectError):
            return Unreachable(f"cannot reach {self.host}: {detail}", retryable=True)
        if isinstance(exc, httpx.DecodingError):
            return MalformedAnswer(f"{self.host}: undecodable answer ({detail})")
        if before_response:
            return Unreachable(f"{self.host} closed the connection: {detail}", retryable=True)
        return MalformedAnswer(
            f"truncated answer from {self.host}: connection lost ({detail})",
            outcome="network-error",
            retryable=True,
        )

    async def _http_error(self, resp: httpx.Response) -> DicomWebError:
        body = bytearray()
        try:
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > 4096:
                    break
        except httpx.HTTPError:
            pass
        status = resp.status_code
        path = urlsplit(str(resp.request.url)).path
        if status in (401, 403):
            what = "refused the credentials" if status == 401 else "denied access"
            return AuthRefused(f"{self.host} {what} (HTTP {status})", status)
        if status == 404:
            return NotFound(
                f"not found on {self.host} (HTTP 404): {excerpt(self.redact(path), 100)}", status
            )
        retry_after = _retry_after(resp.headers.get("retry-after"))
        text = excerpt(self.redact(_error_text(bytes(body))))
        return ServerError(
            f"HTTP {status} from {self.host}" + (f": {text}" if text else ""),
            status,
            retryable=status in RETRY_STATUSES,
            retry_after=retry_after,
        )


async def _close(resp: httpx.Response) -> None:
    with contextlib.suppress(Exception):  # closing a broken stream must not mask the outcome
        await resp.aclose()


def _error_text(body: bytes) -> str:
    """The "Message" of a JSON error body (Orthanc's form), else the body itself."""
    if body[:1] in (b"{", b" ", b"\n"):
        try:
            data = json.loads(body)
        except ValueError:
            return body.decode("utf-8", "replace")
        if isinstance(data, dict) and isinstance(data.get("Message"), str):
            details = data.get("Details")
            return data["Message"] + (f" ({details})" if isinstance(details, str) else "")
    return body.decode("utf-8", "replace")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None  # HTTP-date form: fall back to back-off
