"""Output: the ranked table (rich on a terminal, aligned text otherwise) and CSV."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from typing import Any, TextIO

from tui.text import clean, escape_markup, fmt_bytes

from .report import VERDICTS, Report, SeriesResult, Timing, status_text


def _row(r: SeriesResult, rank: int, strategies: Sequence[str]) -> list[str]:
    cells = [str(rank), r.label, str(r.instances if r.instances is not None else "?")]
    for name in strategies:
        t = r.metadata.get(name)
        cells.append(_cell(t))
    cells.append(_cell(r.first_frame) if r.first_frame else ("-" if r.has_pixels is False else ""))
    cells += [f"{r.total_ms:.0f}", r.verdict]
    return cells


def _cell(t: Timing | None) -> str:
    if t is None:
        return ""
    if not t.ok:
        return f"failed {status_text(t)}"
    return f"{t.ms:.0f} ms {fmt_bytes(t.bytes)}"


def _headers(strategies: Sequence[str]) -> list[str]:
    names = {"qido": "QIDO+includefield", "wado": "WADO /metadata"}
    return ["#", "series", "inst", *(names[s] for s in strategies), "first frame", "total ms",
            "verdict"]  # fmt: skip


def _summary(report: Report) -> list[str]:
    counts = {v: sum(1 for r in report.results if r.verdict == v) for v in VERDICTS}
    lines = [
        # The product and versions are the server's words: the plain-text table prints as is.
        f"server: {clean(report.info.label, 60)} (DICOMweb plugin {clean(report.info.dicomweb, 30)})"
        f" at {clean(report.url, None)}",
        f"{len(report.results)} series, {report.requests} requests, {fmt_bytes(report.bytes)}, "
        f"wall {report.wall_ms / 1000:.2f} s; metadata: {' + '.join(report.strategies)}",
        "verdicts: " + ", ".join(f"{n} {v}" for v, n in counts.items()),
    ]
    if report.results:
        top = report.results[0]
        lines.append(f"slowest: {top.label} {top.total_ms:.0f} ms ({top.verdict})")
    if report.slow_rule:
        lines.append(report.slow_rule)
    if report.hints:
        lines.append("hints:")
        lines += [f"  - {h}" for h in report.hints]
    return lines


def render_table(report: Report, out: TextIO, *, rich: bool | None = None) -> None:
    """The ranked table and the summary: a rich table on a terminal, aligned text otherwise."""
    heads = _headers(report.strategies)
    rows = [_row(r, i, report.strategies) for i, r in enumerate(report.results, 1)]
    if rich if rich is not None else out.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title="pacs-tui triage (slowest first)", title_justify="left")
        for i, h in enumerate(heads):
            table.add_column(h, justify="right" if i in (0, 2) or h == "total ms" else "left")
        styles = {"failed": "red", "slow": "yellow", "no-image": "dim"}
        for r, cells in zip(report.results, rows, strict=True):
            table.add_row(*(escape_markup(c, None) for c in cells), style=styles.get(r.verdict))
        console = Console(file=out, highlight=False)
        console.print(table)
        for line in _summary(report):
            console.print(escape_markup(line, None), soft_wrap=True)
        return
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(heads)]
    right = {0, 2, len(heads) - 2}
    for cells in [heads, *rows]:
        line = "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        print(line.rstrip(), file=out)
    print(file=out)
    for line in _summary(report):
        print(line, file=out)


def render_csv(report: Report, out: TextIO) -> None:
    """A header row and one row per series (slowest first)."""
    steps = [
        ("metadata", report.strategies[0]),
        *((f"metadata_{s}", s) for s in report.strategies[1:]),
    ]
    head = ["rank", "study_uid", "series_uid", "number", "modality", "description", "instances"]
    for prefix, _ in steps:
        head += [f"{prefix}_strategy", f"{prefix}_ms", f"{prefix}_bytes", f"{prefix}_status",
                 f"{prefix}_outcome"]  # fmt: skip
    head += ["first_frame_ms", "first_frame_bytes", "first_frame_status", "first_frame_outcome",
             "total_ms", "verdict", "error"]  # fmt: skip
    w = csv.writer(out, lineterminator="\n")
    w.writerow(head)
    for rank, r in enumerate(report.results, 1):
        s = r.series
        row: list[Any] = [rank, s.study_uid, s.series_uid, s.number, clean(s.modality, None),
                          clean(s.description, None), r.instances]  # fmt: skip
        for _, name in steps:
            t = r.metadata.get(name)
            row += [name, *((round(t.ms, 1), t.bytes, t.status, t.outcome) if t else ("",) * 4)]
        f = r.first_frame
        row += [round(f.ms, 1), f.bytes, f.status, f.outcome] if f else ["", "", "", ""]
        row += [round(r.total_ms, 1), r.verdict, r.error or ""]
        w.writerow(["" if v is None else v for v in row])
