"""Requests view: the live request log, newest first, sortable and filterable."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from tui.app.base import PacsScreen
from tui.app.widgets import Row, RowTable, cell
from tui.text import fmt_bytes

COLUMNS = [("Time", "ts", 8), ("Kind", "kind", 14), ("Purpose", "purpose", 8),
           ("St", "status", 3), ("Bytes", "bytes", 7), ("TTFB", "ttfb", 6), ("Total", "total", 7),
           ("Outcome", "outcome", 13), ("URL", "url", None)]  # fmt: skip
KINDS = ("all", "qido-studies", "qido-series", "qido-instances", "wado-metadata", "wado-frames",
         "wado-rendered", "other")  # fmt: skip
OUTCOMES = ("all", "ok", "http-error", "timeout", "network-error", "cancelled", "decode-error",
            "not ok")  # fmt: skip
OUTCOME_STYLES = {
    "ok": "green",
    "cancelled": "magenta",
    "timeout": "bold red",
    "http-error": "bold red",
    "network-error": "bold red",
    "decode-error": "red",
}
MAX_ROWS = 1000


def _bytes(n: int | None) -> str:
    if n is None:
        return ""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return f"{n}B"


def _ms(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value / 1000:.1f}s" if value >= 10000 else f"{value:.0f}ms"


class RequestsScreen(PacsScreen):
    """What was fetched, how big, how slow, and how it ended."""

    view_name = "requests"

    BINDINGS = [
        Binding("s", "sort", "Sort", id="requests.sort"),
        Binding("t", "cycle_kind", "Kind", id="requests.kind"),
        Binding("o", "cycle_outcome", "Outcome", id="requests.outcome"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sort_by_total = False
        self.kind = "all"
        self.outcome = "all"
        self._dirty = False

    def compose_body(self) -> ComposeResult:
        yield Static(id="summary")
        yield RowTable(COLUMNS, id="requests")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(RowTable).focus()
        self.reload()
        self.set_interval(0.25, self._flush)

    def crumbs(self) -> list[str]:
        parts = ["requests", "slowest first" if self.sort_by_total else "newest first"]
        if self.kind != "all":
            parts.append(f"kind={self.kind}")
        if self.outcome != "all":
            parts.append(f"outcome={self.outcome}")
        return parts

    def records(self) -> list[Any]:
        """Records passing the kind/outcome filters, in display order."""
        log = self.pacs.request_log
        records = list(log.records()) if log is not None else []
        if self.kind != "all":
            records = [r for r in records if r.kind == self.kind]
        if self.outcome == "not ok":
            records = [r for r in records if r.outcome != "ok"]
        elif self.outcome != "all":
            records = [r for r in records if r.outcome == self.outcome]
        if self.sort_by_total:
            records.sort(key=lambda r: r.total_ms or 0.0, reverse=True)
        else:
            records.reverse()
        return records[:MAX_ROWS]

    def reload(self) -> None:
        """Rebuild the table and the summary line."""
        self._dirty = False
        log = self.pacs.request_log
        every = list(log.records()) if log is not None else []
        shown = self.records()
        rows = []
        for i, r in enumerate(shown):
            ts = r.ts[11:19] if len(r.ts) >= 19 else r.ts
            cells = [cell(ts), cell(r.kind), cell(r.purpose), cell("" if r.status is None else r.status),
                     cell(_bytes(r.bytes)), cell(_ms(r.ttfb_ms)), cell(_ms(r.total_ms)),
                     cell(r.outcome, 20, OUTCOME_STYLES.get(r.outcome, "")), cell(r.url, 200, "dim")]  # fmt: skip
            rows.append(Row(f"r{i}:{id(r)}", cells, f"{r.kind} {r.purpose} {r.outcome} {r.url}", r))
        table = self.query_one(RowTable)
        table.set_rows(rows, empty="no requests yet")
        total_bytes = sum(r.bytes or 0 for r in every)
        slowest = max(every, key=lambda r: r.total_ms or 0.0, default=None)
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f" {len(every)} requests", style="bold")
        t.append(f" · {fmt_bytes(total_bytes)}")
        t.append(
            f" · {self.pacs.in_flight()} in flight", style="yellow" if self.pacs.in_flight() else ""
        )
        if slowest is not None:
            t.append(f" · slowest {_ms(slowest.total_ms)} {slowest.kind}")
        if len(shown) != len(every):
            t.append(f" · {len(shown)} shown", style="dim")
        self.query_one("#summary", Static).update(t)
        self.refresh_chrome()

    def requests_changed(self) -> None:
        self._dirty = True

    def _flush(self) -> None:
        if self._dirty:
            self.reload()

    def apply_filter(self, text: str) -> None:
        self.query_one(RowTable).set_filter(text)

    def action_sort(self) -> None:
        self.sort_by_total = not self.sort_by_total
        self.reload()

    def action_cycle_kind(self) -> None:
        self.kind = KINDS[(KINDS.index(self.kind) + 1) % len(KINDS)]
        self.reload()

    def action_cycle_outcome(self) -> None:
        self.outcome = OUTCOMES[(OUTCOMES.index(self.outcome) + 1) % len(OUTCOMES)]
        self.reload()

    def action_back(self) -> None:
        if self.filter_text:
            super().action_back()
            return
        self.app.pop_screen()

    def action_retry(self) -> None:
        self.reload()
