"""The real `pacs-tui` in tmux against the test Orthanc: keys in, screen and request log out."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tui import sample

pytestmark = [pytest.mark.tmux, pytest.mark.orthanc]

if shutil.which("tmux") is None:
    pytest.skip("tmux is not installed", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent


def _program() -> list[str]:
    exe = Path(sys.executable).parent / "pacs-tui"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "tui"]


class Tmux:
    """One private tmux server (its own socket), killed at the end."""

    def __init__(self) -> None:
        self.socket = f"pacs-tui-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str, env: dict[str, str] | None = None) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=20,
            check=False,
        )
        return out.stdout

    def start(self, shell_command: str, env: dict[str, str]) -> None:
        """A detached 80x24 session named "main" running `shell_command` in the project."""
        self.run("new-session", "-d", "-x", "80", "-y", "24", "-s", "main", "-c", str(ROOT),
                 shell_command, env=env)  # fmt: skip

    def capture(self, colour: bool = False) -> str:
        return self.run("capture-pane", "-p", *(["-e"] if colour else []), "-t", "main")

    def wait_for(self, predicate: Any, timeout: float = 15.0, colour: bool = False) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture(colour)
            if predicate(screen):
                return screen
            time.sleep(0.05)
        raise AssertionError(f"timed out; screen:\n{self.capture()}")

    def kill(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10, check=False
        )


def test_real_program_in_tmux(orthanc: Any, tmp_path: Path) -> None:
    log_path = tmp_path / "requests.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PACS_TUI_", "TMUX"))}
    env.update(
        PACS_TUI_PASSWORD=orthanc.password,
        COLORTERM="truecolor",
        TERM="xterm-256color",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    command = [
        *_program(),
        "--url",
        orthanc.dicomweb_url,
        "--user",
        orthanc.user,
        "--request-log",
        str(log_path),
        "--image-mode",
        "halfcell",
    ]
    tmux = Tmux()
    try:
        tmux.start(" ".join(_quote(c) for c in command), env)
        tmux.wait_for(lambda s: "Müller, Zoë" in s and "CT Thorax Abdomen" in s, timeout=30)
        tmux.wait_for(lambda s: "Scout single slice" in s)
        # Into the studies pane, into the series pane, down to #3, open it: in one go, faster
        # than the dwell, so series #1 and #2 are passed over without loading.
        tmux.run("send-keys", "-t", "main", "Enter", "Enter", "j", "j", "Enter")
        screen = tmux.wait_for(lambda s: "▀" in s and "51/100" in s, colour=True)
        seen_at = time.time()
        assert "\x1b[" in screen and ("38;2;" in screen or "38;5;" in screen)
        assert "Thorax 3mm" in screen and "qido" in screen
        records = [json.loads(line) for line in log_path.read_text().splitlines()]
        ct100 = sample.SERIES["ct100"].series_uid
        metadata = [r for r in records if r["kind"] in ("qido-instances", "wado-metadata")]
        assert metadata and {r["series_uid"] for r in metadata} == {ct100}
        frames = [r for r in records if r["kind"] == "wado-frames" and r["purpose"] == "selected"]
        assert frames and all(r["series_uid"] == ct100 for r in frames)
        first = dt.datetime.fromisoformat(frames[0]["ts"].replace("Z", "+00:00")).timestamp()
        arrival = first + frames[0]["total_ms"] / 1000
        assert seen_at - arrival < 1.0 + 0.1  # + the capture polling step
        assert all(
            "password" not in json.dumps(r) and orthanc.password not in json.dumps(r)
            for r in records
        )
        # Back in the browser, the row shows its time.
        tmux.run("send-keys", "-t", "main", "Escape")
        # The series table is repainted in steps: wait for the row with its time, not just any
        # "Thorax 3mm" (the breadcrumb has it too).
        row_of_3 = re.compile(r"^\s*3\s+CT\s+Thorax 3mm.*\d (ms|s)\b.*$", re.M)
        screen = tmux.wait_for(lambda s: "Patients" in s and row_of_3.search(s) is not None)
        found = row_of_3.search(screen)
        assert found is not None
        row = found.group(0)
        assert re.search(r"\d+(\.\d)? (ms|s)\b", row), row
        tmux.run("send-keys", "-t", "main", "q")
        tmux.wait_for(lambda s: "Patients" not in s, timeout=10)
    finally:
        tmux.kill()


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def _children(pid: int) -> list[int]:
    """Child processes of `pid`, from /proc (no procps needed)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text(encoding="ascii", errors="replace").rsplit(") ", 1)[-1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ")[-1][:1] != "Z"
    except FileNotFoundError:
        return False


def test_demo_starts_orthanc_shows_studies_and_leaves_nothing_behind(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PACS_TUI_", "TMUX"))}
    env.update(TERM="xterm-256color", XDG_CACHE_HOME=str(tmp_path / "cache"))
    program = " ".join(_quote(c) for c in _program())
    tmux = Tmux()
    try:
        tmux.start(f"sh -c '{program} demo --image-mode off; echo EXITED $?; sleep 30'", env)
        screen = tmux.wait_for(lambda s: "Müller, Zoë" in s and "Orthanc 1.10" in s, timeout=60)
        assert "山田, 太郎" in screen and "Παπαδόπουλος, Νίκος" in screen
        shell = int(tmux.run("display", "-p", "-t", "main", "#{pane_pid}").strip())
        app = _children(shell)
        orthancs = [
            p
            for a in app
            for p in _children(a)
            if Path(f"/proc/{p}/comm").read_text().strip() == "Orthanc"
        ]
        assert len(orthancs) == 1, "the demo runs exactly one private Orthanc"
        tmux.run("send-keys", "-t", "main", "q")
        screen = tmux.wait_for(lambda s: "EXITED" in s, timeout=20)
        assert "EXITED 0" in screen
        deadline = time.monotonic() + 5
        while _alive(orthancs[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(orthancs[0]), "the demo's Orthanc outlived the app"
    finally:
        tmux.kill()
