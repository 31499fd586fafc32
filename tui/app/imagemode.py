"""Choosing the textual-image widget class for --image-mode, with a guarded terminal probe."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 0.5
MODES = ("auto", "kitty", "sixel", "halfcell", "unicode", "off")


def _import_widgets() -> Any:
    """Import textual_image.widget (its import probes the terminal once), never raising."""
    # A terminal that does not answer the probe is normal (tmux, some SSH clients): textual-image
    # then logs a whole traceback, which would land on the user's screen before the app starts.
    quiet = logging.getLogger("textual_image")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
    try:
        from textual_image import _terminal

        # The probe waits for the terminal's answer; bound that wait.
        _terminal._PROBE_TIMEOUT = PROBE_TIMEOUT_S  # type: ignore[attr-defined]
    except Exception:  # pragma: no cover - private API moved: keep its own timeout
        _terminal = None
    try:
        import textual_image.widget as widgets

        return widgets
    except Exception as exc:  # e.g. ZeroDivisionError on a 0x0 pty, stdin closed
        log.warning("terminal probe failed (%s): using half-cell images", exc)
        if _terminal is not None:
            # Pretend the probe answered "no graphics, 10x20 cells" so the import can finish.
            caps = _terminal.TerminalCapabilities(
                _terminal.CellSize(10, 20), sixel=False, tgp=False
            )
            _terminal.probe_terminal._result = caps  # type: ignore[attr-defined]
        import textual_image.widget as widgets

        return widgets


def image_class_for(mode: str) -> tuple[type | None, str]:
    """The widget class for an image mode and the mode actually used ("off" gives None).

    `auto` probes the terminal (once, bounded); any failure falls back to half-cell.
    """
    if mode == "off":
        return None, "off"
    try:
        widgets = _import_widgets()
    except Exception as exc:  # textual_image unusable: no previews, the rest still works
        log.warning("textual-image unavailable: %s", exc)
        return None, "off"
    table = {
        "kitty": (widgets.TGPImage, "kitty"),
        "sixel": (widgets.SixelImage, "sixel"),
        "halfcell": (widgets.HalfcellImage, "halfcell"),
        "unicode": (widgets.UnicodeImage, "unicode"),
    }
    if mode in table:
        return table[mode]
    try:
        cls = widgets.Image
        name = {
            "SixelImage": "sixel",
            "AutoImage": _auto_name(),
        }.get(cls.__name__, "auto")
        if name in ("unicode", "auto"):
            # Not a terminal we could probe, or a text-only answer: half-cell looks better.
            return widgets.HalfcellImage, "halfcell"
        return cls, name
    except Exception:
        return widgets.HalfcellImage, "halfcell"


def _auto_name() -> str:
    try:
        from textual_image.renderable import Image as renderable

        module = renderable.__module__.rsplit(".", 1)[-1]
        return {"tgp": "kitty", "halfcell": "halfcell", "unicode": "unicode", "sixel": "sixel"}.get(
            module, "auto"
        )
    except Exception:
        return "auto"
