"""Triage results: per-step timings, per-series results and the whole report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tui.dicomweb.client import ServerInfo
from tui.dicomweb.model import Series, Study
from tui.text import clean

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
PURPOSE = "triage"
KIND = {"qido": "qido-instances", "wado": "wado-metadata"}
VERDICTS = ("ok", "slow", "failed", "no-image")


class TriageAbort(Exception):
    """Ends the run with a one-line message and an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message, self.code = message, code


@dataclass
class Timing:
    """One measured step of a series: a metadata strategy or the first frames."""

    ms: float
    bytes: int = 0
    status: int | None = None
    outcome: str = "ok"
    requests: int = 0
    error: str | None = None
    strategy: str | None = None  # metadata only
    frames: int = 0  # first frames only: frames received

    @property
    def ok(self) -> bool:
        """True when the step succeeded."""
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """The contract keys (plus `strategy` for metadata, `frames`/`error` when useful)."""
        out: dict[str, Any] = {"strategy": self.strategy} if self.strategy else {}
        out |= {"ms": round(self.ms, 1), "bytes": self.bytes, "status": self.status,
                "outcome": self.outcome}  # fmt: skip
        if self.strategy is None:
            out["frames"] = self.frames
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class SeriesResult:
    """What triage measured for one series."""

    series: Series
    study: Study | None = None
    instances: int | None = None
    metadata: dict[str, Timing] = field(default_factory=dict)  # strategy -> timing, in order
    first_frame: Timing | None = None
    has_pixels: bool | None = None
    no_image_reason: str | None = None
    verdict: str = "ok"
    expected_ms: float | None = None  # what the series' size predicts in this scope
    probe: tuple[str, str, str] | None = None  # (study, series, sop) of the first image

    @property
    def primary(self) -> Timing | None:
        """The timing of the first (configured) strategy."""
        return next(iter(self.metadata.values()), None)

    @property
    def total_ms(self) -> float:
        """Primary metadata plus first frames: what ranks the series."""
        meta = self.primary
        return (meta.ms if meta else 0.0) + (self.first_frame.ms if self.first_frame else 0.0)

    @property
    def failed(self) -> bool:
        """True when any measured step failed."""
        steps = [*self.metadata.values(), self.first_frame]
        return any(t is not None and not t.ok for t in steps)

    @property
    def error(self) -> str | None:
        """The first error message of the series, if any."""
        steps = [*self.metadata.values(), self.first_frame]
        return next((t.error for t in steps if t is not None and t.error), None)

    @property
    def label(self) -> str:
        """E.g. `series 3 "Thorax 3mm" (CT)`, safe for a terminal."""
        s = self.series
        num = f"series {s.number}" if s.number is not None else f"series {s.series_uid[-16:]}"
        desc = f' "{clean(s.description, 40)}"' if s.description else ""
        return f"{num}{desc} ({clean(s.modality or '?', 8)})"

    def to_json(self, strategies: Sequence[str]) -> dict[str, Any]:
        """One entry of the contract's `series` list; other strategies as `metadata_<name>`."""
        s = self.series
        out: dict[str, Any] = {
            "study_uid": s.study_uid,
            "series_uid": s.series_uid,
            "modality": s.modality,
            "description": s.description,
            "instances": self.instances,
            "metadata": self.primary.to_json() if self.primary else None,
            "first_frame": self.first_frame.to_json() if self.first_frame else None,
            "verdict": self.verdict,
        }
        for name in strategies[1:]:
            timing = self.metadata.get(name)
            out[f"metadata_{name}"] = timing.to_json() if timing else None
        expected = None if self.expected_ms is None else round(self.expected_ms, 1)
        out |= {"number": s.number, "total_ms": round(self.total_ms, 1), "expected_ms": expected,
                "error": self.error}  # fmt: skip
        return out


@dataclass
class Report:
    """The whole run: server, series ranked slowest first, totals and hints."""

    url: str
    info: ServerInfo
    strategies: list[str]
    results: list[SeriesResult]
    requests: int
    bytes: int
    wall_ms: float
    threshold_ms: float | None
    median_ms: float | None
    hints: list[str]
    slow_rule: str | None = None

    @property
    def exit_code(self) -> int:
        """1 when a series failed, else 0."""
        return EXIT_FAILED if any(r.verdict == "failed" for r in self.results) else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        """The DESIGN.md triage contract, plus `hints` and a few extra keys."""
        return {
            "server": {
                "url": self.url,
                "product": self.info.label,
                "dicomweb": self.info.dicomweb,
            },  # fmt: skip
            "series": [r.to_json(self.strategies) for r in self.results],
            "totals": {
                "requests": self.requests,
                "bytes": self.bytes,
                "wall_ms": round(self.wall_ms, 1),
            },  # fmt: skip
            "hints": self.hints,
            "strategies": self.strategies,
            "slow_threshold_ms": None if self.threshold_ms is None else round(self.threshold_ms, 1),
            "slow_rule": self.slow_rule,
        }


def ratio(a: float, b: float) -> str:
    """`a` as a multiple of `b`, e.g. "3.2x" ("n/a" when `b` is not positive)."""
    return f"{a / b:.1f}x" if b > 0 else "n/a"


def status_text(t: Timing) -> str:
    """How a step ended, for a table cell or a hint: "(HTTP 500)" or "(timeout)"."""
    return f"(HTTP {t.status})" if t.status else f"({t.outcome})"
