"""Measuring: scope, metadata strategies, first frames, gzip probe, verdicts and hints."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from tui.config import Settings
from tui.dicomweb.client import DicomWebClient
from tui.dicomweb.errors import (
    AuthRefused,
    DicomWebError,
    InvalidQuery,
    RequestTimeout,
    Unreachable,
)
from tui.dicomweb.model import Instance, Series, Study
from tui.dicomweb.query import StudyQuery, encode_value
from tui.dicomweb.requestlog import JsonLinesSink, RequestLog, RequestRecord
from tui.loader.strategies import instance_has_pixels, no_pixel_reason, sort_instances
from tui.text import clean, escape_markup, fmt_bytes

from .report import (
    EXIT_FAILED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    KIND,
    PURPOSE,
    Report,
    SeriesResult,
    Timing,
    TriageAbort,
    ratio,
    status_text,
)


class _Recorder:
    """Keeps every record of the run (the RequestLog ring buffer may be smaller)."""

    def __init__(self, log: RequestLog) -> None:
        self.records: list[RequestRecord] = []
        self.unsubscribe = log.subscribe(self.records.append)

    def mark(self) -> int:
        return len(self.records)

    def since(self, mark: int, series_uid: str, kind: str) -> list[RequestRecord]:
        return [r for r in self.records[mark:] if r.series_uid == series_uid and r.kind == kind]


def _timing(recs: list[RequestRecord], t0: float, err: DicomWebError | None, **kw: Any) -> Timing:
    last = recs[-1] if recs else None
    return Timing(
        ms=(time.perf_counter() - t0) * 1000.0,
        bytes=sum(r.bytes for r in recs),
        status=err.status if err is not None and last is None else (last.status if last else None),
        outcome=err.outcome if err is not None else (last.outcome if last else "ok"),
        requests=len(recs),
        error=None if err is None else clean(err.message, 160),
        **kw,
    )


class _Triage:
    def __init__(
        self, settings: Settings, args: argparse.Namespace, client: DicomWebClient, rec: _Recorder
    ) -> None:
        self.settings, self.args, self.client, self.rec = settings, args, client, rec
        configured = settings.metadata if settings.metadata in ("qido", "wado") else "qido"
        choice = getattr(args, "triage_metadata", None) or configured
        other = "wado" if configured == "qido" else "qido"
        self.strategies = [configured, other] if choice == "both" else [choice]
        frames = getattr(args, "frames", None)
        self.frames = 1 if frames is None else int(frames)

    async def scope(self) -> list[tuple[Study | None, Series]]:
        """(study, series) pairs of the patient's studies or of the one study."""
        patient = getattr(self.args, "patient", None)
        study_uid = getattr(self.args, "study", None)
        query = StudyQuery(patient_id=patient) if patient else StudyQuery(study_uid=study_uid)
        what = f"patient {clean(patient, 64)!r}" if patient else f"study {clean(study_uid, 80)}"
        try:
            studies = await self.client.search_studies(query, limit=0, purpose=PURPOSE)
        except InvalidQuery as err:
            raise TriageAbort(f"{what}: {err.message}", EXIT_USAGE) from None
        if not studies:
            raise TriageAbort(f"no study found for {what}", EXIT_USAGE)
        out: list[tuple[Study | None, Series]] = []
        for study in studies:
            for series in await self.client.search_series(study.study_uid, purpose=PURPOSE):
                out.append((study, series))
        if not out:
            raise TriageAbort(f"no series found for {what}", EXIT_USAGE)
        return out

    async def series(self, study: Study | None, series: Series, index: int = 0) -> SeriesResult:
        """Time the metadata strategies, then the first frames of one series.

        With two strategies every other series measures them in reverse order, so that
        neither always profits from the server's file cache warmed by the other.
        """
        res = SeriesResult(series, study, instances=series.num_instances)
        order = self.strategies if index % 2 == 0 else self.strategies[::-1]
        got: dict[str, tuple[list[Instance] | None, Timing]] = {}
        for name in order:
            got[name] = await self._metadata(series, name)
        found: list[Instance] | None = None
        for name in self.strategies:
            instances, res.metadata[name] = got[name]
            if found is None and instances is not None:
                found = instances
        if found is None:
            return res
        res.instances = len(found)
        images = [i for i in sort_instances(found) if instance_has_pixels(i)]
        res.has_pixels = bool(images)
        if not images:
            res.no_image_reason = no_pixel_reason(found)
            return res
        first = images[0]
        res.probe = (first.study_uid, first.series_uid, first.sop_uid)
        if self.frames > 0:
            res.first_frame = await self._frames(series, images)
        return res

    async def _metadata(self, series: Series, name: str) -> tuple[list[Instance] | None, Timing]:
        mark, t0 = self.rec.mark(), time.perf_counter()
        st, se = series.study_uid, series.series_uid
        try:
            if name == "qido":
                found = await self.client.search_instances(
                    st, se, self.settings.includefield, purpose=PURPOSE)  # fmt: skip
            else:
                found = await self.client.series_metadata(st, se, purpose=PURPOSE)
        except DicomWebError as err:
            return None, _timing(self.rec.since(mark, se, KIND[name]), t0, err, strategy=name)
        return found, _timing(self.rec.since(mark, se, KIND[name]), t0, None, strategy=name)

    async def _frames(self, series: Series, images: list[Instance]) -> Timing:
        mark, t0 = self.rec.mark(), time.perf_counter()
        remaining, got = self.frames, 0
        try:
            for inst in images:
                if remaining <= 0:
                    break
                count = min(max(1, inst.number_of_frames or 1), remaining)
                parts = await self.client.frames(
                    inst.study_uid, inst.series_uid, inst.sop_uid, list(range(1, count + 1)),
                    purpose=PURPOSE)  # fmt: skip
                got += len(parts)
                remaining -= count
        except DicomWebError as err:
            return _timing(self.rec.since(mark, series.series_uid, "wado-frames"), t0, err,
                           frames=got)  # fmt: skip
        return _timing(self.rec.since(mark, series.series_uid, "wado-frames"), t0, None,
                       frames=got)  # fmt: skip


async def _gzip_probe(
    client: DicomWebClient, rec: _Recorder, target: tuple[str, str, str]
) -> str | None:
    """Fetch one frame with identity and with gzip offered; a hint if the server gzips it."""
    st, se, sop = target
    seen: dict[str, tuple[float, int, int, str]] = {}
    try:
        for enc in ("identity", "gzip"):
            mark, t0 = rec.mark(), time.perf_counter()
            parts = await client.frames(st, se, sop, [1], purpose=PURPOSE, accept_encoding=enc)
            ms = (time.perf_counter() - t0) * 1000.0
            wire = sum(r.bytes for r in rec.since(mark, se, "wado-frames"))
            size = sum(len(p.data) for p in parts)
            seen[enc] = (ms, wire, size, parts[0].content_encoding if parts else "identity")
    except DicomWebError:
        return None
    ms_id, wire_id, _, _ = seen["identity"]
    ms_gz, wire_gz, size, coding = seen["gzip"]
    if coding != "gzip":
        return None
    cost = ms_gz - ms_id
    verb = f"costs {cost:.1f} ms more" if cost >= 0 else f"saves {-cost:.1f} ms"
    return (
        f"frames come back gzipped when gzip is offered: one frame ({fmt_bytes(size)} raw) took "
        f"{ms_gz:.1f} ms and {fmt_bytes(wire_gz)} on the wire with gzip, against {ms_id:.1f} ms and "
        f"{fmt_bytes(wire_id)} with Accept-Encoding: identity (gzip {verb}, "
        f"{ratio(ms_gz, ms_id)} the time; pacs-tui asks for identity on pixel data)"
    )


def _size_model(results: list[SeriesResult]) -> tuple[float, float, float] | None:
    """(ms per instance, metadata floor ms, first-frame ms) typical of this scope, or None.

    Metadata time grows with the instance count, so a 320-image series is not "slow" for
    taking longer than a scout; the rate comes from series of 10+ instances where the fixed
    cost of a request no longer dominates."""
    ok = [r for r in results if not r.failed and r.primary is not None]
    if len(ok) < 2:
        return None
    sized = [r for r in ok if (r.instances or 0) >= 10] or ok
    rate = statistics.median(r.primary.ms / max(1, r.instances or 1) for r in sized if r.primary)
    floor = statistics.median(r.primary.ms for r in ok if r.primary)
    frames = [r.first_frame.ms for r in ok if r.first_frame is not None and r.first_frame.ok]
    return rate, floor, statistics.median(frames) if frames else 0.0


def _is_slow(r: SeriesResult, slow_ms: float | None) -> bool:
    if slow_ms is not None:
        return r.total_ms > slow_ms
    e = r.expected_ms
    return e is not None and r.total_ms > max(3 * e, e + 200.0)


def _verdicts(
    results: list[SeriesResult], slow_ms: float | None
) -> tuple[float | None, float | None, str | None]:
    """Set each verdict; returns (fixed threshold, median, the rule in words)."""
    measured = [r.total_ms for r in results if not r.failed and r.primary is not None]
    median = statistics.median(measured) if measured else None
    model = None if slow_ms is not None else _size_model(results)
    rule = None
    if slow_ms is not None:
        rule = f"slow above {slow_ms:.0f} ms (--slow-ms)"
    elif model is not None:
        rule = (
            f"slow above 3x what a series' size predicts here ({model[0]:.2f} ms per instance,"
            f" at least {model[1]:.0f} ms, + {model[2]:.0f} ms first frame), and by 200+ ms"
        )
    for r in results:
        if model is not None:
            rate, floor, frame = model
            r.expected_ms = frame + max(floor, rate * (r.instances or 1))
        if r.failed or r.primary is None:
            r.verdict = "failed"
        elif _is_slow(r, slow_ms):
            r.verdict = "slow"
        elif r.has_pixels is False:
            r.verdict = "no-image"
        else:
            r.verdict = "ok"
    return slow_ms, median, rule


def _hints(report: Report, studies: list[Study]) -> list[str]:
    hints: list[str] = []
    for r in report.results:
        if r.verdict == "failed":
            for name, t in r.metadata.items():
                if not t.ok:
                    hints.append(f"{r.label} failed: metadata ({name}) {status_text(t)}: {t.error}")
            if r.first_frame is not None and not r.first_frame.ok:
                hints.append(f"{r.label} failed: frames {status_text(r.first_frame)}: "
                             f"{r.first_frame.error}")  # fmt: skip
    slow = [r for r in report.results if r.verdict == "slow"]
    if slow and report.median_ms:
        r = slow[0]
        meta = r.primary
        ff = r.first_frame
        expected = (
            f", {ratio(r.total_ms, r.expected_ms)} what its size predicts ({r.expected_ms:.0f} ms)"
            if r.expected_ms
            else ""
        )
        hints.append(
            f"{r.label} is the slowest: {r.total_ms:.0f} ms, {ratio(r.total_ms, report.median_ms)}"
            f" the median of the scope ({report.median_ms:.0f} ms){expected}; metadata"
            f" ({meta.strategy if meta else '?'}) {meta.ms if meta else 0:.0f} ms"
            + (f", first frame {ff.ms:.0f} ms" if ff else "")
        )
    if len(report.strategies) == 2:
        pairs = [
            (r.metadata["qido"], r.metadata["wado"])
            for r in report.results
            if all(k in r.metadata and r.metadata[k].ok for k in ("qido", "wado"))
        ]
        if pairs:
            q = sum(p[0].ms for p in pairs)
            w = sum(p[1].ms for p in pairs)
            qb = sum(p[0].bytes for p in pairs)
            wb = sum(p[1].bytes for p in pairs)
            faster, slower = (
                ("QIDO with includefield", "/metadata")
                if q <= w
                else ("/metadata", "QIDO with includefield")
            )
            hints.append(
                f"{slower} is {ratio(max(q, w), min(q, w))} slower than {faster} on this server:"
                f" {w:.0f} ms and {fmt_bytes(wb)} for /metadata against {q:.0f} ms and {fmt_bytes(qb)} for"
                f" QIDO over {len(pairs)} series"
            )
    seen: set[str] = set()
    for study in studies:
        for what, value in (("patient ID", study.patient_id), ("patient name", study.patient_name)):
            if not value or value in seen:
                continue
            seen.add(value)
            try:
                encode_value(str(value))
            except InvalidQuery:
                if not any(ord(ch) > 0x7E for ch in str(value)):
                    continue  # control characters: not a server limitation
                hints.append(
                    f"{what} {clean(value, 60)!r} is not ASCII, and this server cannot match"
                    " such a value through QIDO (query strings are not decoded): a search by"
                    " that name finds nothing; search by an ASCII ID or with wildcards instead"
                )
    return hints


def _progress(
    err: TextIO, total: int, enabled: bool
) -> tuple[Callable[[str], None], Callable[[], None]]:
    if not enabled:
        return (lambda _label: None), (lambda: None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    progress = Progress(TextColumn("triage"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.description}"), console=Console(file=err),
                        transient=True)  # fmt: skip
    task = progress.add_task("", total=total)
    progress.start()
    return (lambda label: progress.update(task, advance=1, description=escape_markup(label, 50)),
            progress.stop)  # fmt: skip


def _check_args(args: argparse.Namespace) -> None:
    if getattr(args, "frames", 1) is not None and args.frames < 0:
        raise TriageAbort("--frames must be 0 or more", EXIT_USAGE)
    if getattr(args, "concurrency", None) is not None and args.concurrency < 1:
        raise TriageAbort("--concurrency must be at least 1", EXIT_USAGE)
    if getattr(args, "slow_ms", None) is not None and args.slow_ms <= 0:
        raise TriageAbort("--slow-ms must be positive", EXIT_USAGE)
    if not (getattr(args, "patient", None) or getattr(args, "study", None)):
        raise TriageAbort("give --patient ID or --study UID", EXIT_USAGE)


async def measure(
    settings: Settings,
    args: argparse.Namespace,
    *,
    err: TextIO | None = None,
    progress: bool | None = None,
) -> Report:
    """Run the measurements and build the report (raises TriageAbort for exit codes 2 and 3)."""
    err = err or sys.stderr
    _check_args(args)
    if not settings.server.url:
        raise TriageAbort("no server URL: pass --url or configure a server", EXIT_USAGE)
    log = RequestLog(maxlen=100_000)
    rec = _Recorder(log)
    sink = JsonLinesSink(settings.request_log) if settings.request_log else None
    unsub_sink = log.subscribe(sink) if sink else None
    t_start = time.perf_counter()
    client = DicomWebClient(settings.server, log)
    try:
        try:
            info = await client.server_info(purpose=PURPOSE)
            tri = _Triage(settings, args, client, rec)
            pairs = await tri.scope()
        except (Unreachable, AuthRefused, RequestTimeout) as exc:
            raise TriageAbort(exc.message, EXIT_UNREACHABLE) from None
        except DicomWebError as exc:
            raise TriageAbort(f"cannot list the series: {exc.message}", EXIT_FAILED) from None
        limit = asyncio.Semaphore(max(1, args.concurrency or 1))  # 1: timings undisturbed
        tick, stop = _progress(err, len(pairs), err.isatty() if progress is None else progress)

        async def one(i: int, study: Study | None, series: Series) -> SeriesResult:
            async with limit:
                res = await tri.series(study, series, i)
            tick(res.label)
            return res

        try:
            results = list(
                await asyncio.gather(*(one(i, st, se) for i, (st, se) in enumerate(pairs)))
            )
        finally:
            stop()
        results.sort(key=lambda r: r.total_ms, reverse=True)
        threshold, median, rule = _verdicts(results, getattr(args, "slow_ms", None))
        probe_hint = None
        probes = [r for r in results if r.probe and r.first_frame and r.first_frame.ok]
        if probes:
            best = max(probes, key=lambda r: (r.first_frame.bytes / max(1, r.first_frame.frames)
                                              if r.first_frame else 0))  # fmt: skip
            assert best.probe is not None
            probe_hint = await _gzip_probe(client, rec, best.probe)
        report = Report(
            url=client.base_url, info=info, strategies=tri.strategies, results=results,
            requests=len(rec.records), bytes=sum(r.bytes for r in rec.records),
            wall_ms=(time.perf_counter() - t_start) * 1000.0, threshold_ms=threshold,
            median_ms=median, hints=[], slow_rule=rule,
        )  # fmt: skip
        studies = list({st.study_uid: st for st, _ in pairs if st is not None}.values())
        report.hints = _hints(report, studies) + ([probe_hint] if probe_hint else [])
        return report
    finally:
        await client.aclose()
        rec.unsubscribe()
        if unsub_sink:
            unsub_sink()
        if sink:
            sink.close()
