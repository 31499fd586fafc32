"""`pacs-tui triage`: a headless timing report of what loads slowly, and why.

For every series in scope (all studies of a patient, or one study) it times the metadata
(QIDO-RS instances with includefield, WADO-RS /metadata, or both) and then the first N frames
in slice order, with the same client and the loader's slice ordering. Output: a table ranked
slowest first, JSON per the DESIGN.md contract (plus `hints`), or CSV; a summary and plain
hints drawn from what was measured. Exit codes: 0 ok, 1 some series failed, 2 usage,
3 unreachable or refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from typing import TextIO

from tui.config import Settings
from tui.text import clean

from .measure import measure
from .output import render_csv, render_table
from .report import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Report,
    SeriesResult,
    Timing,
    TriageAbort,
)

_C1 = re.compile("[\x80-\x9f]")

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "Report",
    "SeriesResult",
    "Timing",
    "TriageAbort",
    "measure",
    "render_csv",
    "render_table",
    "run_triage",
    "triage",
]


async def triage(
    settings: Settings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    progress: bool | None = None,
) -> int:
    """Measure, print the report in `args.format`, and return the exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        report = await measure(settings, args, err=err, progress=progress)
    except TriageAbort as exc:
        print(f"pacs-tui: {clean(exc.message, 300)}", file=err)
        return exc.code
    _write_report(report, getattr(args, "format", "table") or "table", out)
    return report.exit_code


def _write_report(report: Report, fmt: str, out: TextIO) -> None:
    """Print the report as a table, JSON or CSV."""
    if fmt == "json":
        text = json.dumps(report.to_json(), ensure_ascii=False, indent=2)
        # json escapes C0 controls but not C1 ones (0x80-0x9f), which some terminals obey as
        # escape sequences: escape them too (the same JSON value, safe on a screen).
        out.write(_C1.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")
    elif fmt == "csv":
        render_csv(report, out)
    else:
        render_table(report, out)
    out.flush()


def run_triage(settings: Settings, args: argparse.Namespace) -> int:
    """Entry point of `pacs-tui triage`: run the report and return the exit code."""
    try:
        return asyncio.run(triage(settings, args))
    except KeyboardInterrupt:
        print("pacs-tui: interrupted", file=sys.stderr)
        return 130
