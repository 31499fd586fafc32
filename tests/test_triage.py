"""`pacs-tui triage` against the real Orthanc, with the latency proxy for slow and failing series."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import via
from tests.latency_proxy import Rule, series_metadata_pattern
from tui import sample
from tui.cli import build_parser, main
from tui.config import ServerSettings, Settings
from tui.triage import measure, render_table, triage
from tui.triage.measure import _verdicts

pytestmark = pytest.mark.orthanc

P1 = sample.PATIENTS["p1"].patient_id
P1_SERIES = [s for s in sample.SERIES.values() if s.patient.key == "p1"]
MISC = sample.STUDIES["misc"].study_uid
SR = sample.SERIES["sr"]
ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ a small contract checker
NUM, INT, STR = (int, float), int, str
OPT = type(None)
STEP = {"ms": NUM, "bytes": INT, "status": (INT, OPT), "outcome": STR}
OUTCOMES = {"ok", "http-error", "timeout", "network-error", "cancelled", "decode-error"}


def check_contract(doc: Any) -> None:
    """Assert `doc` has the DESIGN.md triage shape (extra keys allowed)."""
    assert isinstance(doc, dict)
    assert set(doc) >= {"server", "series", "totals"}
    for key in ("url", "product", "dicomweb"):
        assert isinstance(doc["server"][key], str), key
    for key, typ in (("requests", INT), ("bytes", INT), ("wall_ms", NUM)):
        assert isinstance(doc["totals"][key], typ) and not isinstance(doc["totals"][key], bool)
    assert isinstance(doc["series"], list)
    prev = float("inf")
    for s in doc["series"]:
        for key in ("study_uid", "series_uid"):
            assert isinstance(s[key], str) and s[key], key
        for key in ("modality", "description"):
            assert isinstance(s[key], (str, OPT)), key
        assert isinstance(s["instances"], (INT, OPT))
        assert s["verdict"] in {"ok", "slow", "failed", "no-image"}
        meta = s["metadata"]
        assert isinstance(meta, dict) and meta["strategy"] in {"qido", "wado"}
        check_step(meta)
        if s["first_frame"] is not None:
            check_step(s["first_frame"])
        total = meta["ms"] + (s["first_frame"]["ms"] if s["first_frame"] else 0)
        assert total <= prev + 0.2, "series not ordered slowest first"
        prev = total
    assert all(isinstance(h, str) for h in doc.get("hints", []))


def check_step(step: dict[str, Any]) -> None:
    for key, typ in STEP.items():
        assert isinstance(step[key], typ) and not isinstance(step[key], bool), key
    assert step["outcome"] in OUTCOMES


# ------------------------------------------------------------------ helpers
def args_for(*argv: str) -> Any:
    return build_parser().parse_args(["triage", "--url", "http://unused", *argv])


async def run(server: ServerSettings, *argv: str, **settings: Any) -> tuple[int, str, str]:
    """Run triage in-process on `server`; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = await triage(Settings(server=server, **settings), args_for(*argv), out=out, err=err,
                        progress=False)  # fmt: skip
    return code, out.getvalue(), err.getvalue()


def by_uid(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["series_uid"]: s for s in doc["series"]}


# ------------------------------------------------------------------ tests
async def test_slow_series_ranked_first_and_called_slow(server_settings, proxy) -> None:
    slow = sample.SERIES["ct20"]
    proxy.rules.append(Rule(series_metadata_pattern(slow.series_uid), delay=2.0))
    code, out, err = await run(via(proxy, server_settings), "--patient", P1, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    check_contract(doc)
    first = doc["series"][0]
    assert first["series_uid"] == slow.series_uid
    assert first["verdict"] == "slow" and first["metadata"]["ms"] >= 2000
    assert len(doc["series"]) == len(P1_SERIES)
    assert any("slowest" in h and "median" in h for h in doc["hints"])


async def test_sr_is_no_image_with_null_first_frame(server_settings) -> None:
    code, out, err = await run(server_settings, "--study", MISC, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    check_contract(doc)
    sr = by_uid(doc)[SR.series_uid]
    assert sr["verdict"] == "no-image" and sr["first_frame"] is None
    assert sr["metadata"]["outcome"] == "ok" and sr["metadata"]["status"] == 200
    cine = by_uid(doc)[sample.SERIES["mf24"].series_uid]
    assert cine["first_frame"]["bytes"] > 0 and cine["verdict"] in ("ok", "slow")


async def test_metadata_500_is_failed_and_exit_1(server_settings, proxy) -> None:
    bad = sample.SERIES["ct_signed"]
    proxy.rules.append(Rule(series_metadata_pattern(bad.series_uid), fail_status=500))
    code, out, _ = await run(via(proxy, server_settings), "--patient", P1, "--format", "json")
    assert code == 1
    doc = json.loads(out)
    check_contract(doc)
    failed = by_uid(doc)[bad.series_uid]
    assert failed["verdict"] == "failed" and failed["first_frame"] is None
    assert failed["metadata"]["status"] == 500 and failed["metadata"]["outcome"] == "http-error"
    assert [s["verdict"] for s in doc["series"]].count("failed") == 1
    assert any("failed" in h and "HTTP 500" in h for h in doc["hints"])
    # the table says so too
    code, out, _ = await run(via(proxy, server_settings), "--patient", P1)
    assert code == 1 and "failed (HTTP 500)" in out and "1 failed" in out


async def test_csv_one_row_per_series(server_settings) -> None:
    code, out, err = await run(server_settings, "--patient", P1, "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == len(P1_SERIES) == len(out.strip().splitlines()) - 1
    assert {r["series_uid"] for r in rows} == {s.series_uid for s in P1_SERIES}
    assert all(r["metadata_strategy"] == "qido" and float(r["metadata_ms"]) > 0 for r in rows)
    totals = [float(r["total_ms"]) for r in rows]
    assert totals == sorted(totals, reverse=True)


async def test_metadata_both_side_by_side(server_settings) -> None:
    code, out, err = await run(server_settings, "--patient", P1, "--metadata", "both",
                               "--format", "json")  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    check_contract(doc)
    for s in doc["series"]:
        assert s["metadata"]["strategy"] == "qido" and s["metadata"]["outcome"] == "ok"
        assert s["metadata_wado"]["strategy"] == "wado" and s["metadata_wado"]["outcome"] == "ok"
        check_step(s["metadata_wado"])
    assert any("/metadata" in h and "QIDO" in h and "slower" in h for h in doc["hints"])
    # configured wado: wado is the contract's "metadata", qido beside it
    code, out, _ = await run(server_settings, "--study", MISC, "--metadata", "both",
                             "--format", "json", metadata="wado")  # fmt: skip
    assert all(s["metadata"]["strategy"] == "wado" and s["metadata_qido"]
               for s in json.loads(out)["series"])  # fmt: skip
    code, out, _ = await run(server_settings, "--patient", P1, "--metadata", "both")
    head = out.splitlines()[0]
    assert "QIDO+includefield" in head and "WADO /metadata" in head
    assert len(out.split("\n\n")[0].splitlines()) == len(P1_SERIES) + 1


async def test_table_summary_and_hints(server_settings) -> None:
    code, out, err = await run(server_settings, "--patient", P1, "--frames", "2")
    assert code == 0 and err == ""
    assert "Orthanc 1.10.1" in out and "requests" in out and "slowest:" in out
    assert "frames come back gzipped" in out  # Orthanc gzips pixel data when offered
    assert "cannot match such a value through QIDO" in out  # Müller^Zoë
    assert "\x1b" not in out  # plain text when stdout is not a terminal


async def test_unknown_patient_and_non_ascii_id_are_usage_errors(server_settings) -> None:
    code, out, err = await run(server_settings, "--patient", "NOSUCHPATIENT")
    assert code == 2 and out == "" and "no study found" in err
    code, _, err = await run(server_settings, "--patient", "Zoë")
    assert code == 2 and "non-ASCII" in err and len(err.strip().splitlines()) == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for name in ("PACS_TUI_CONFIG", "PACS_TUI_URL", "PACS_TUI_USER"):
        monkeypatch.delenv(name, raising=False)


def test_down_server_exit_3_one_line(cli_env, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PACS_TUI_PASSWORD", "x")
    url = f"http://127.0.0.1:{_closed_port()}/dicom-web"
    code = main(["triage", "--url", url, "--user", "u", "--patient", P1])
    cap = capsys.readouterr()
    assert code == 3 and cap.out == ""
    assert len(cap.err.strip().splitlines()) == 1 and "Traceback" not in cap.err
    assert "cannot reach" in cap.err


def test_wrong_password_exit_3(cli_env, orthanc, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PACS_TUI_PASSWORD", "not-the-password")
    code = main(["triage", "--url", orthanc.dicomweb_url, "--user", orthanc.user,
                 "--patient", P1])  # fmt: skip
    cap = capsys.readouterr()
    assert code == 3 and cap.out == ""
    assert len(cap.err.strip().splitlines()) == 1 and "refused the credentials" in cap.err
    assert "not-the-password" not in cap.err


def test_end_to_end_subprocess(orthanc, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACS_TUI_")}
    env |= {"PACS_TUI_PASSWORD": orthanc.password, "XDG_CONFIG_HOME": str(tmp_path)}
    log = tmp_path / "requests.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "tui", "triage", "--url", orthanc.dicomweb_url,
         "--user", orthanc.user, "--study", MISC, "--format", "json", "--concurrency", "2",
         "--request-log", str(log)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    check_contract(doc)
    assert doc["server"]["product"].startswith("Orthanc") and doc["server"]["dicomweb"] == "1.7"
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == doc["totals"]["requests"]
    assert {r["purpose"] for r in lines} == {"triage"}
    assert orthanc.password not in log.read_text()


async def test_rich_table_keeps_dicom_strings_as_data(server_settings) -> None:
    report = await measure(Settings(server=server_settings),
                           args_for("--patient", sample.HOSTILE_PATIENT.patient_id),
                           err=io.StringIO(), progress=False)  # fmt: skip
    buf = io.StringIO()
    render_table(report, buf, rich=True)
    text = buf.getvalue()
    assert "[link=http://x]click" in text  # shown literally, not parsed as markup
    assert "\x1b" not in text and "\x07" not in text
    assert not any("cannot match" in h for h in report.hints)  # ASCII + control chars


def _result(n: int, meta_ms: float, frame_ms: float = 4.0) -> Any:
    from tui.dicomweb.model import Series
    from tui.triage.report import SeriesResult, Timing

    return SeriesResult(
        series=Series("1.2", f"1.2.{n}.{meta_ms}", number=n), instances=n, has_pixels=True,
        metadata={"qido": Timing(meta_ms, strategy="qido")}, first_frame=Timing(frame_ms),
    )  # fmt: skip


def test_slow_is_relative_to_what_the_series_size_predicts() -> None:
    """A big series is not slow for being big; a small one that takes as long is."""
    big = _result(320, 250.0)  # 0.78 ms per instance, like its neighbours
    small_but_slow = _result(20, 260.0)  # as long as the big one: 13 ms per instance
    others = [_result(100, 80.0), _result(20, 20.0), _result(10, 12.0), _result(1, 8.0)]
    results = [big, small_but_slow, *others]
    _, _, rule = _verdicts(results, None)
    assert big.verdict == "ok" and small_but_slow.verdict == "slow"
    assert all(r.verdict == "ok" for r in others)
    assert rule and "per instance" in rule
    assert big.expected_ms is not None and big.expected_ms > 200  # size-aware prediction
    # An explicit threshold overrides the model.
    _, _, rule = _verdicts(results, 100.0)
    assert big.verdict == "slow" and small_but_slow.verdict == "slow" and "--slow-ms" in rule


def test_json_output_escapes_c1_controls_but_keeps_the_value() -> None:
    from tui.dicomweb.client import ServerInfo
    from tui.dicomweb.model import Series
    from tui.triage import Report, SeriesResult

    hostile = "Thorax\x9b2J\x1b[31m Zoë"
    series = Series("1.2", "1.2.3", number=1, description=hostile)
    report = Report(url="http://h/dicom-web", info=ServerInfo("Orthanc", "1.10.1", "1.7"),
                    strategies=["qido"], results=[SeriesResult(series=series)], requests=0,
                    bytes=0, wall_ms=1.0, threshold_ms=None, median_ms=None, hints=[])  # fmt: skip
    out = io.StringIO()
    from tui.triage import _write_report

    _write_report(report, "json", out)
    text = out.getvalue()
    assert "\x9b" not in text and "\x1b" not in text and "Zoë" in text
    assert json.loads(text)["series"][0]["description"] == hostile
