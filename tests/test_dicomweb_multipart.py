"""The incremental multipart/related parser: chunking, split delimiters, headers, linear time."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.dicomweb.errors import MalformedAnswer
from tui.dicomweb.multipart import (
    MultipartParser,
    parse_all,
    parse_content_type,
    transfer_syntax_of,
)

BOUNDARY = "c0ffee-b0undary"


def build(parts: list[tuple[dict[str, str], bytes]], boundary: str = BOUNDARY) -> bytes:
    out = b"preamble to ignore\r\n"
    for headers, body in parts:
        out += f"--{boundary}\r\n".encode()
        for k, v in headers.items():
            out += f"{k}: {v}\r\n".encode()
        out += b"\r\n" + body + b"\r\n"
    return out + f"--{boundary}--\r\nepilogue".encode()


def feed_chunks(data: bytes, cuts: list[int], boundary: str = BOUNDARY):
    parser = MultipartParser(boundary)
    parts = []
    prev = 0
    for cut in sorted({c for c in cuts if 0 < c < len(data)}) + [len(data)]:
        parts.extend(parser.feed(data[prev:cut]))
        prev = cut
    parts.extend(parser.close())
    return parts


bodies = st.lists(st.binary(max_size=300), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(bodies=bodies, data=st.data())
def test_any_chunking_yields_same_parts(bodies: list[bytes], data: st.DataObject) -> None:
    parts_in = [
        ({"Content-Type": f"application/octet-stream; transfer-syntax=1.2.{i}"}, b)
        for i, b in enumerate(bodies)
    ]
    raw = build(parts_in)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=40))
    parts = feed_chunks(raw, cuts)
    assert [p.body for p in parts] == bodies
    assert [p.headers["content-type"] for p in parts] == [h["Content-Type"] for h, _ in parts_in]


@settings(max_examples=300, deadline=None)
@given(bodies=bodies, data=st.data())
def test_content_length_right_wrong_or_garbage(bodies: list[bytes], data: st.DataObject) -> None:
    """A right Content-Length is a shortcut; a wrong one must not change the result."""
    parts_in = []
    for b in bodies:
        mode = data.draw(st.sampled_from(["none", "right", "wrong", "garbage"]))
        length = {
            "right": str(len(b)),
            "wrong": str(max(0, len(b) + data.draw(st.integers(-50, 500)))),
            "garbage": "12x",
        }.get(mode)
        parts_in.append(({"Content-Length": length} if length else {}, b))
    raw = build(parts_in)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=20))
    assert [p.body for p in feed_chunks(raw, cuts)] == bodies


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=200), prefix=st.sampled_from([b"\r\n--", b"--", b"\r\n-", b"\r"]))
def test_body_with_near_delimiters(body: bytes, prefix: bytes) -> None:
    """Bodies that contain prefixes of the delimiter do not end the part early."""
    tricky = prefix + BOUNDARY[:-1].encode() + b"\x00" + body + b"\r\n-" + prefix
    raw = build([({}, tricky), ({"X-A": "b"}, body)])
    for size in (1, 2, 3, 7, len(raw)):
        parts = feed_chunks(raw, list(range(size, len(raw), size)))
        assert [p.body for p in parts] == [tricky, body]
        assert parts[0].headers == {}
        assert parts[1].headers == {"x-a": "b"}


def test_delimiter_split_across_chunks_at_every_offset() -> None:
    raw = build([({"Content-Type": "a/b"}, b"x" * 50), ({"Content-Type": "c/d"}, b"y" * 50)])
    delim_at = raw.index(b"\r\n--" + BOUNDARY.encode(), raw.index(b"x"))
    for cut in range(delim_at - 2, delim_at + len(BOUNDARY) + 8):
        parts = feed_chunks(raw, [cut])
        assert [p.body for p in parts] == [b"x" * 50, b"y" * 50]


def test_many_tiny_chunks() -> None:
    bodies = [bytes(range(256)) * 4, b"", b"\r\n\r\n--"]
    raw = build([({"Content-Type": "application/octet-stream"}, b) for b in bodies])
    parser = MultipartParser(BOUNDARY)
    parts = []
    for i in range(len(raw)):
        parts.extend(parser.feed(raw[i : i + 1]))
    parts.extend(parser.close())
    assert [p.body for p in parts] == bodies


@pytest.mark.parametrize("with_length", [False, True])
def test_parts_yielded_as_soon_as_delimiter_arrives(with_length: bool) -> None:
    h1 = {"Content-Length": "5"} if with_length else {}
    raw = build([(h1, b"first"), ({}, b"second")])
    second_delim = raw.index(b"second") - len(f"\r\n--{BOUNDARY}\r\n\r\n")
    parser = MultipartParser(BOUNDARY)
    got = parser.feed(raw[: second_delim + len(BOUNDARY) + 4])
    assert [p.body for p in got] == [b"first"]
    got = parser.feed(raw[second_delim + len(BOUNDARY) + 4 :])
    assert [p.body for p in got] == [b"second"]
    assert parser.finished


def test_first_delimiter_at_start_without_preamble() -> None:
    raw = f"--{BOUNDARY}\r\nContent-Type: a/b\r\n\r\nDATA\r\n--{BOUNDARY}--".encode()
    parts = parse_all(f"multipart/related; boundary={BOUNDARY}", raw)
    assert parts[0].body == b"DATA" and parts[0].content_type == "a/b"


def test_truncated_body_raises() -> None:
    raw = build([({}, b"abc" * 100)])
    cut = raw[: raw.index(b"abc") + 150]
    parser = MultipartParser(BOUNDARY)
    assert parser.feed(cut) == []
    with pytest.raises(MalformedAnswer, match="truncated"):
        parser.close()
    # A complete first part but no closing delimiter is truncated too.
    raw2 = build([({}, b"a"), ({}, b"b")])
    with pytest.raises(MalformedAnswer):
        parse_all(f"multipart/related; boundary={BOUNDARY}", raw2[: raw2.rindex(b"b") + 1])


@pytest.mark.parametrize(
    ("ctype", "boundary", "ts"),
    [
        ('multipart/related; type="application/octet-stream"; boundary=abc', "abc", None),
        ('multipart/related; boundary="a b;c"; type="application/octet-stream"', "a b;c", None),
        (
            'multipart/related; type="application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1";'
            " boundary=08bd",
            "08bd",
            "1.2.840.10008.1.2.1",
        ),
        (
            "multipart/related; transfer-syntax=1.2.840.10008.1.2.5; BOUNDARY=x",
            "x",
            "1.2.840.10008.1.2.5",
        ),
    ],
)
def test_content_type_parsing(ctype: str, boundary: str, ts: str | None) -> None:
    mime, params = parse_content_type(ctype)
    assert mime == "multipart/related"
    assert params["boundary"] == boundary
    assert transfer_syntax_of(ctype) == ts
    MultipartParser.from_content_type(ctype)


def test_not_multipart_or_no_boundary() -> None:
    with pytest.raises(MalformedAnswer):
        MultipartParser.from_content_type("application/json")
    with pytest.raises(MalformedAnswer):
        MultipartParser.from_content_type("multipart/related; type=a/b")
    with pytest.raises(MalformedAnswer):
        MultipartParser.from_content_type(None)


class CountingParser(MultipartParser):
    """Counts the bytes every search may look at: a linear parser scans each byte O(1) times."""

    scanned = 0

    def _find(self, token: bytes) -> int:
        self.scanned += len(self._buf) - max(self._search, self._pos)
        return super()._find(token)


@pytest.mark.parametrize("chunk", [1000, 4096, 65536])
def test_large_part_scans_each_byte_a_bounded_number_of_times(chunk: int) -> None:
    body = b"\x00\r\n-" * (5 * 1024 * 1024 // 4)
    raw = build([({"Content-Type": "application/octet-stream"}, body), ({}, b"tail")])
    parser = CountingParser(BOUNDARY)
    parts = []
    for i in range(0, len(raw), chunk):
        parts.extend(parser.feed(raw[i : i + chunk]))
    parts.extend(parser.close())
    assert [len(p.body) for p in parts] == [len(body), 4]
    # (A rescan-from-the-start parser would look at ~len(raw)**2 / (2 * chunk) bytes.)
    assert parser.scanned <= 2 * len(raw)


def _parse_time(megabytes: int, chunk: int = 4096) -> float:
    body = (bytes(range(256)) * 4096)[: 1024 * 1024] * megabytes
    raw = build([({"Content-Type": "application/octet-stream"}, body)])
    best = float("inf")
    for _ in range(3):
        parser = MultipartParser(BOUNDARY)
        t0 = time.perf_counter()
        parts = []
        for i in range(0, len(raw), chunk):
            parts.extend(parser.feed(raw[i : i + chunk]))
        parts.extend(parser.close())
        best = min(best, time.perf_counter() - t0)
        assert len(parts) == 1 and len(parts[0].body) == len(body)
    return best


def test_large_part_parses_in_linear_time() -> None:
    """20 MB vs 5 MB in 4 KiB chunks: a quadratic parser would take ~16x (and seconds)."""
    small = _parse_time(5)
    large = _parse_time(20)
    assert large < 12 * max(small, 5e-3), (small, large)
    assert large < 5.0


@pytest.mark.parametrize("chunk", [1, 5, 13, 100_000])
def test_wrong_content_length_landing_on_a_later_delimiter(chunk: int) -> None:
    """Every wrong length, including ones that point exactly at a later delimiter (here 74),
    must not swallow the parts in between."""
    tail = [({}, b"\x00\x00"), ({"Content-Length": "7"}, b"\x00" * 7)]
    for n in range(120):
        raw = build([({}, b""), ({"Content-Length": str(n)}, b""), *tail])
        parts = feed_chunks(raw, list(range(chunk, len(raw), chunk)))
        assert [p.body for p in parts] == [b"", b"", b"\x00\x00", b"\x00" * 7], n
