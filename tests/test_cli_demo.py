"""`pacs-tui demo` on a machine without Orthanc: a one-line hint, not a traceback."""

from __future__ import annotations

import pytest

import tui.orthanc
from tui import cli


def test_demo_without_orthanc_says_how_to_install(monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(tui.orthanc, "DEFAULT_BINARY", "/nonexistent/Orthanc")
    assert cli.main(["demo"]) == 3
    err = capsys.readouterr().err
    assert "apt-get install -y orthanc orthanc-dicomweb" in err
    assert "Traceback" not in err
