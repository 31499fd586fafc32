"""Incremental multipart/related parser (RFC 2046) that keeps each part's headers.

Feed it the body in chunks of any size; `feed()` returns the parts completed by that chunk,
each as soon as its closing delimiter has arrived. Delimiters split across chunks are found
because the search restarts just before the end of the previous data, never from the start of
the part: parsing is linear in the size of the body.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import MalformedAnswer


def split_params(value: str) -> list[str]:
    """Split a header value on ';' outside double quotes."""
    out, cur, quoted, escaped = [], [], False, False
    for ch in value:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\" and quoted:
            cur.append(ch)
            escaped = True
        elif ch == '"':
            quoted = not quoted
            cur.append(ch)
        elif ch == ";" and not quoted:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return [p for p in out if p]


def parse_content_type(value: str | None) -> tuple[str, dict[str, str]]:
    """`type/subtype; k=v; k="v"` -> ("type/subtype", {k: v}) with keys lower-cased, unquoted."""
    if not value:
        return "", {}
    parts = split_params(value)
    if not parts:
        return "", {}
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
    return mime, params


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
        self._buf += chunk
        parts: list[Part] = []
        while self._step(parts):
            pass
        # Compact once the consumed prefix dominates (amortised linear).
        if self._pos > 65536 and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._search -= self._pos
            self._pos = 0
        return parts

    def _find(self, token: bytes) -> int:
        buf = self._buf
        idx = buf.find(token, max(self._search, self._pos))
        if idx < 0:
            self._search = max(self._pos, len(buf) - len(token) + 1)
        return idx

    def _step(self, parts: list[Part]) -> bool:
        buf, delim = self._buf, self._delim
        if self._state in (_PREAMBLE, _BODY):
            idx = self._find(delim)
            if idx < 0:
                return False
            if self._state == _BODY:
                parts.append(Part(self._headers, bytes(buf[self._pos : idx])))
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
            self._pos = self._search = body_start
            self._state = _BODY
            return True
        return False

    def close(self) -> None:
        """Signal end of input; raise MalformedAnswer if the closing delimiter never came."""
        if self._state != _DONE:
            raise MalformedAnswer(
                f"truncated multipart answer: no closing delimiter after {self.bytes_fed} bytes"
            )


def parse_all(content_type: str, body: bytes) -> list[Part]:
    """Parse a complete multipart body in one go."""
    parser = MultipartParser.from_content_type(content_type)
    parts = parser.feed(body)
    parser.close()
    return parts
