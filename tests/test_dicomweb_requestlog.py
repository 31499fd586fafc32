"""Request records: DESIGN.md field order, ring buffer, live subscribers, JSON-lines sink."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from tui.dicomweb.requestlog import (
    JsonLinesSink,
    RequestLog,
    RequestRecord,
    StartedRequest,
    strip_userinfo,
    utc_timestamp,
)

DESIGN_KEYS = [
    "ts", "method", "url", "kind", "purpose", "study_uid", "series_uid",
    "status", "outcome", "bytes", "ttfb_ms", "total_ms", "attempt",
]  # fmt: skip


def record(n: int = 1, url: str = "http://h/dicom-web/studies") -> RequestRecord:
    return RequestRecord(
        ts=utc_timestamp(), method="GET", url=url, kind="qido-studies", purpose="list",
        study_uid=None, series_uid=None, status=200, outcome="ok", bytes=10 * n,
        ttfb_ms=1.234, total_ms=2.5, attempt=1,
    )  # fmt: skip


def test_field_order_and_types() -> None:
    data = record().to_json()
    assert list(data) == DESIGN_KEYS
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["ts"])
    assert data["ttfb_ms"] == 1.23 and data["status"] == 200


def test_timestamp_is_utc_with_millis() -> None:
    when = dt.datetime(2026, 12, 4, 19, 30, 0, 123456, tzinfo=dt.UTC)
    assert utc_timestamp(when) == "2026-12-04T19:30:00.123Z"


def test_userinfo_never_in_url() -> None:
    assert strip_userinfo("http://u:secret@h:8042/x?a=1") == "http://h:8042/x?a=1"
    assert record(url="https://u:pw@h/dicom-web").url == "https://h/dicom-web"


def test_ring_buffer_subscribers_and_in_flight() -> None:
    log = RequestLog(maxlen=3)
    seen: list[RequestRecord] = []
    started: list[StartedRequest] = []
    unsubscribe = log.subscribe(seen.append)
    log.subscribe_started(started.append)

    def broken(r: RequestRecord) -> None:
        raise RuntimeError("broken subscriber")

    log.subscribe(broken)  # a broken subscriber does not break the log
    info = StartedRequest("GET", "http://h/x", "other", "list", None, None, 1)
    log.started(info)
    log.started(info)
    assert log.in_flight == 2 and started == [info, info]
    for n in range(5):
        log.add(record(n))
    assert log.in_flight == 0
    assert [r.bytes for r in log.records()] == [20, 30, 40]
    assert len(seen) == 5 and log.total == 5
    unsubscribe()
    log.add(record())
    assert len(seen) == 5


def test_json_lines_sink(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    sink = JsonLinesSink(str(path))
    log = RequestLog()
    log.subscribe(sink)
    log.add(record(1))
    # flushed per line: readable before close
    lines = path.read_text().splitlines()
    assert len(lines) == 1 and list(json.loads(lines[0])) == DESIGN_KEYS
    log.add(record(2))
    sink.close()
    log.add(record(3))  # after close: dropped, no error
    assert [json.loads(x)["bytes"] for x in path.read_text().splitlines()] == [10, 20]
