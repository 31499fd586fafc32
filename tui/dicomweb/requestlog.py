"""Request records and their sinks: a live in-memory ring buffer and a JSON-lines file.

One `RequestRecord` per HTTP attempt, written when the attempt ends (also on failure or
cancellation). `bytes` counts the raw body bytes received on the wire (before any gzip
decoding), so compressed JSON answers show their compressed size. URLs never carry userinfo,
and records never carry headers, so no credential can reach a record.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

KINDS = (
    "qido-studies", "qido-series", "qido-instances",
    "wado-metadata", "wado-frames", "wado-rendered", "other",
)  # fmt: skip
PURPOSES = ("list", "selected", "prefetch", "triage")
OUTCOMES = ("ok", "http-error", "timeout", "network-error", "cancelled", "decode-error")


def utc_timestamp(when: _dt.datetime | None = None) -> str:
    """ISO 8601 UTC with milliseconds and a Z, e.g. 2026-12-04T19:30:00.123Z."""
    when = when or _dt.datetime.now(_dt.UTC)
    return (
        when.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    )


def strip_userinfo(url: str) -> str:
    """The URL without any user:password@ part."""
    if "@" not in url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


@dataclass
class RequestRecord:
    """One HTTP attempt, in the DESIGN.md request-log field order."""

    ts: str
    method: str
    url: str
    kind: str
    purpose: str
    study_uid: str | None
    series_uid: str | None
    status: int | None
    outcome: str
    bytes: int
    ttfb_ms: float | None
    total_ms: float
    attempt: int

    def __post_init__(self) -> None:
        self.url = strip_userinfo(self.url)

    def to_json(self) -> dict[str, Any]:
        """A dict with exactly the DESIGN.md keys, in order."""
        return {
            "ts": self.ts,
            "method": self.method,
            "url": self.url,
            "kind": self.kind,
            "purpose": self.purpose,
            "study_uid": self.study_uid,
            "series_uid": self.series_uid,
            "status": self.status,
            "outcome": self.outcome,
            "bytes": self.bytes,
            "ttfb_ms": None if self.ttfb_ms is None else round(self.ttfb_ms, 2),
            "total_ms": round(self.total_ms, 2),
            "attempt": self.attempt,
        }


RecordCallback = Callable[[RequestRecord], None]


@dataclass(frozen=True)
class StartedRequest:
    """Sent to `subscribe_started` callbacks when an attempt begins."""

    method: str
    url: str
    kind: str
    purpose: str
    study_uid: str | None
    series_uid: str | None
    attempt: int


class RequestLog:
    """Bounded ring buffer of records, observable live; also counts requests in flight."""

    def __init__(self, maxlen: int = 2000) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=maxlen)
        self._subscribers: list[RecordCallback] = []
        self._started: list[Callable[[StartedRequest], None]] = []
        self._lock = threading.Lock()
        self.in_flight = 0
        self.total = 0

    def started(self, info: StartedRequest) -> None:
        """Note that an attempt began (in_flight + 1) and tell `subscribe_started` callbacks."""
        with self._lock:
            self.in_flight += 1
            callbacks = list(self._started)
        for cb in callbacks:
            _safe_call(cb, info)

    def add(self, record: RequestRecord, *, finished: bool = True) -> None:
        """Store a record (in_flight - 1 when it ends a started attempt) and notify subscribers."""
        with self._lock:
            if finished and self.in_flight > 0:
                self.in_flight -= 1
            self._records.append(record)
            self.total += 1
            callbacks = list(self._subscribers)
        for cb in callbacks:
            _safe_call(cb, record)

    def records(self) -> list[RequestRecord]:
        """A snapshot of the buffered records, oldest first."""
        with self._lock:
            return list(self._records)

    def subscribe(self, callback: RecordCallback) -> Callable[[], None]:
        """Call `callback(record)` for every new record; returns an unsubscribe function."""
        with self._lock:
            self._subscribers.append(callback)
        return lambda: _remove(self._subscribers, callback, self._lock)

    def subscribe_started(self, callback: Callable[[StartedRequest], None]) -> Callable[[], None]:
        """Call `callback(info)` when an attempt starts; returns an unsubscribe function."""
        with self._lock:
            self._started.append(callback)
        return lambda: _remove(self._started, callback, self._lock)

    def clear(self) -> None:
        """Forget the buffered records (in_flight is kept)."""
        with self._lock:
            self._records.clear()


def _remove(lst: list[Any], item: Any, lock: threading.Lock) -> None:
    with lock:
        if item in lst:
            lst.remove(item)


def _safe_call(cb: Callable[[Any], None], arg: Any) -> None:
    try:
        cb(arg)
    except Exception:  # a broken subscriber must not break requests
        log.exception("request-log subscriber failed")


class JsonLinesSink:
    """Appends one JSON object per record to a file, flushed after every line.

    Use as a RequestLog subscriber: `log.subscribe(JsonLinesSink(path))`.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fh: IO[str] | None = open(path, "a", encoding="utf-8")  # noqa: SIM115
        self._lock = threading.Lock()

    def __call__(self, record: RequestRecord) -> None:
        """Write one record as one line."""
        self.write(record)

    def write(self, record: RequestRecord) -> None:
        """Write one record as one line and flush."""
        line = json.dumps(record.to_json(), separators=(", ", ": "))
        with self._lock:
            if self._fh is None:
                return
            self._fh.write(line + "\n")
            self._fh.flush()

    def close(self) -> None:
        """Close the file; later records are dropped."""
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def __repr__(self) -> str:
        return f"JsonLinesSink({self.path!r})"
