"""--image-mode: explicit classes, `off`, and the guarded `auto` probe (a terminal that never
answers, a 0x0 pty) run in a real pseudo-terminal, as textual-image probes at import time."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time

import pytest

from tui.app.imagemode import image_class_for

SCRIPT = (
    "import time; t = time.monotonic();"
    "from tui.app.imagemode import image_class_for;"
    "cls, mode = image_class_for('auto');"
    "print('RESULT', cls.__name__ if cls else None, mode, round(time.monotonic() - t, 2))"
)


def run_in_pty(rows: int, cols: int) -> tuple[str, float]:
    """Run the probe in a pty of the given size that never answers; return output, seconds."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "COLORTERM")}
    env["TERM"] = "xterm-256color"
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    output = b""
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        proc.wait(timeout=20)
    finally:
        os.close(master)
    return output.decode("utf-8", "replace"), time.monotonic() - started


@pytest.mark.parametrize("size", [(24, 80), (0, 0)], ids=["80x24", "0x0"])
def test_auto_probe_is_bounded_and_falls_back_to_halfcell(size: tuple[int, int]) -> None:
    output, seconds = run_in_pty(*size)
    found = re.search(r"RESULT (\S+) (\S+) ", output)
    assert found, f"no result; output: {output!r}"
    name, mode = found.groups()
    line = found.group(0)
    assert mode == "halfcell" and name in ("HalfcellImage", "AutoImage"), line
    assert "Traceback" not in output and "ZeroDivisionError" not in output
    assert seconds < 8  # bounded: a terminal that never answers does not hang the start


def test_explicit_modes_and_off() -> None:
    import textual_image.widget as widgets

    assert image_class_for("off") == (None, "off")
    for mode, name in [
        ("halfcell", "HalfcellImage"),
        ("unicode", "UnicodeImage"),
        ("sixel", "SixelImage"),
        ("kitty", "TGPImage"),
    ]:
        cls, used = image_class_for(mode)
        assert cls is getattr(widgets, name) and used == mode
