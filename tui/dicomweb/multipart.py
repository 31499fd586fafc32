"""Incremental multipart/related parser (RFC 2046) that keeps each part's headers.

Feed it the body in chunks of any size; `feed()` returns the parts completed by that chunk,
each as soon as its closing delimiter has arrived. Delimiters split across chunks are found
because the search restarts just before the end of the previous data, never from the start of
the part: parsing is linear in the size of the body. When a part gives its Content-Length (as
Orthanc's do), the parser gathers that many bytes as a list of chunks and joins them once
(one copy instead of growing a buffer); the body is still checked for delimiters, so a wrong
length never changes the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from .errors import MalformedAnswer

_PARAM = re.compile(r'(?:[^;"]|"(?:[^"\\]|\\.)*"?)+')


def split_params(value: str) -> list[str]:
    """Split a header value on ';' outside double quotes."""
    return [p.strip() for p in _PARAM.findall(value) if p.strip()]


def parse_content_type(value: str | None) -> tuple[str, dict[str, str]]:
    """`type/subtype; k=v; k="v"` -> ("type/subtype", {k: v}) with keys lower-cased, unquoted."""
    if not value:
        return "", {}
    mime, params = _parse_content_type(value)
    return mime, dict(params)


@lru_cache(maxsize=256)
def _parse_content_type(value: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    parts = split_params(value)
    if not parts:
        return "", ()
    mime = parts[0].lower() if "=" not in parts[0] else ""
    params: dict[str, str] = {}
    for p in parts[1:] if mime or not parts else parts:
        key, sep, val = p.partition("=")
        if not sep:
            continue
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params[key.strip().lower()] = val
    return mime, tuple(params.items())


def transfer_syntax_of(content_type: str | None) -> str | None:
    """The `transfer-syntax=` parameter, also when nested in a quoted `type=` value."""
    _, params = parse_content_type(content_type)
    ts = params.get("transfer-syntax")
    if ts:
        return ts
    inner = params.get("type")
    if inner and ";" in inner:
        return parse_content_type(inner)[1].get("transfer-syntax") or None
    return None


@dataclass
class Part:
    """One body part: headers (names lower-cased) and its bytes."""

    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def content_type(self) -> str | None:
        """The part's Content-Type header, if any."""
        return self.headers.get("content-type")


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.decode("latin-1").replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise MalformedAnswer(f"malformed multipart part header line: {line[:60]!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


def _content_length(headers: dict[str, str]) -> int | None:
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() else None


_PREAMBLE, _AFTER_DELIM, _HEADERS, _BODY, _DONE = range(5)


class MultipartParser:
    """Incremental multipart/related parser; see the module docstring."""

    def __init__(self, boundary: str | bytes) -> None:
        if isinstance(boundary, str):
            boundary = boundary.encode("latin-1")
        if not boundary:
            raise MalformedAnswer("multipart answer without a boundary")
        self._delim = b"\r\n--" + boundary
        # A virtual CRLF lets the first delimiter (at the very start) match like the others.
        self._buf = bytearray(b"\r\n")
        self._pos = 0  # start of unconsumed data
        self._search = 0  # where the next search for the current token may start
        self._state = _PREAMBLE
        self._headers: dict[str, str] = {}
        self._length: int | None = None  # the part's Content-Length, when it gave one
        self._eof = False
        # A body of known length is gathered as a list of chunks and joined once.
        self._pending: list[bytes] | None = None
        self._pending_len = 0
        self.bytes_fed = 0

    @property
    def finished(self) -> bool:
        """True once the closing delimiter (`--boundary--`) has been seen."""
        return self._state == _DONE

    @classmethod
    def from_content_type(cls, content_type: str | None) -> MultipartParser:
        """A parser for the boundary in a `multipart/related; boundary=...` header."""
        mime, params = parse_content_type(content_type)
        if not mime.startswith("multipart/"):
            raise MalformedAnswer(f"expected a multipart answer, got {mime or 'no content type'}")
        boundary = params.get("boundary")
        if not boundary:
            raise MalformedAnswer("multipart answer without a boundary")
        return cls(boundary)

    def feed(self, chunk: bytes) -> list[Part]:
        """Add bytes; return the parts that this chunk completed (possibly none)."""
        self.bytes_fed += len(chunk)
        if self._state == _DONE:
            return []  # epilogue is ignored
        parts: list[Part] = []
        if self._pending is not None:
            self._pending.append(chunk)
            self._pending_len += len(chunk)
            if self._pending_len < (self._length or 0) + len(self._delim):
                return parts
            self._finish_pending(parts)
        else:
            self._buf += chunk
        while self._step(parts):
            pass
        if self._state == _BODY and self._length is not None and not self._eof:
            have = len(self._buf) - self._pos
            if have < self._length + len(self._delim):
                with memoryview(self._buf) as view:
                    self._pending = [bytes(view[self._pos :])]
                self._pending_len = have
                self._buf, self._pos, self._search = bytearray(), 0, 0
        # Compact once the consumed prefix dominates (amortised linear).
        if self._pos > 65536 and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._search -= self._pos
            self._pos = 0
        return parts

    def _finish_pending(self, parts: list[Part]) -> None:
        """All the promised body bytes (and a delimiter's worth more) are in: split them."""
        chunks, length, delim = self._pending or [], self._length or 0, self._delim
        self._pending = None
        i = acc = 0  # chunks[i] holds body byte `length` (there are more bytes than that)
        while acc + len(chunks[i]) <= length:
            acc += len(chunks[i])
            i += 1
        split = length - acc
        last = memoryview(chunks[i])  # slices of a view are not copied before the join
        rest = b"".join([last[split:], *chunks[i + 1 :]])
        body = b"".join([*chunks[:i], last[:split]])
        last.release()
        n = len(delim) - 1
        # Trust the length only if the delimiter is right after it and nowhere before.
        if (
            rest.startswith(delim)
            and body.find(delim) < 0
            and (body[-n:] + rest[:n]).find(delim) < 0
        ):
            parts.append(Part(self._headers, body))
            self._buf = bytearray(rest)
            self._pos = self._search = len(delim)
            self._length = None
            self._state = _AFTER_DELIM
        else:  # the length was wrong: scan for the first delimiter instead
            self._buf = bytearray(b"".join(chunks))
            self._pos = self._search = 0
            self._length = None

    def _find(self, token: bytes) -> int:
        buf = self._buf
        idx = buf.find(token, max(self._search, self._pos))
        if idx < 0:
            self._search = max(self._pos, len(buf) - len(token) + 1)
        return idx

    def _step(self, parts: list[Part]) -> bool:
        buf, delim = self._buf, self._delim
        if self._state == _BODY and self._length is not None and not self._eof:
            # Wait for the promised bytes, then scan them once (the first delimiter wins).
            if len(buf) < self._pos + self._length + len(delim):
                return False
            self._length = None
        if self._state in (_PREAMBLE, _BODY):
            idx = self._find(delim)
            if idx < 0:
                return False
            if self._state == _BODY:
                with memoryview(buf) as view:  # one copy, not two
                    parts.append(Part(self._headers, bytes(view[self._pos : idx])))
            self._pos = self._search = idx + len(delim)
            self._state = _AFTER_DELIM
            return True
        if self._state == _AFTER_DELIM:
            if len(buf) - self._pos < 2:
                return False
            if buf[self._pos : self._pos + 2] == b"--":
                self._state = _DONE
                return False
            eol = self._find(b"\n")
            if eol < 0:
                return False
            self._pos = self._search = eol + 1
            self._state = _HEADERS
            return True
        if self._state == _HEADERS:
            if buf[self._pos : self._pos + 2] == b"\r\n":
                end, body_start = self._pos, self._pos + 2
            elif buf[self._pos : self._pos + 1] == b"\n":
                end, body_start = self._pos, self._pos + 1
            elif len(buf) - self._pos < 2:
                return False
            else:
                end = self._find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) - self._pos > 65536:
                        raise MalformedAnswer("multipart part headers too long")
                    return False
                body_start = end + 4
            self._headers = _parse_headers(bytes(buf[self._pos : end]))
            self._length = _content_length(self._headers)
            self._pos = self._search = body_start
            self._state = _BODY
            return True
        return False

    def close(self) -> list[Part]:
        """Signal end of input; return parts still pending (only when a part's Content-Length
        overstated its size); raise MalformedAnswer if the closing delimiter never came."""
        parts: list[Part] = []
        self._eof = True
        if self._pending is not None:
            self._buf = bytearray(b"".join(self._pending))
            self._pos = self._search = 0
            self._pending = None
        if self._state == _BODY and self._length is not None:
            # The promised bytes never came: find the delimiters instead.
            while self._step(parts):
                pass
        if self._state != _DONE:
            raise MalformedAnswer(
                f"truncated multipart answer: no closing delimiter after {self.bytes_fed} bytes"
            )
        return parts


def parse_all(content_type: str, body: bytes) -> list[Part]:
    """Parse a complete multipart body in one go."""
    parser = MultipartParser.from_content_type(content_type)
    parts = parser.feed(body)
    return parts + parser.close()
