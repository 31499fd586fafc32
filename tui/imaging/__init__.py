"""imaging layer: one frame's bytes -> numpy -> windowed PIL image (no network, no Textual).

Modules: ``pixelformat`` (what a frame's header says), ``decode`` (bytes -> stored values),
``window`` (stored values -> display values), ``frames`` (the pipeline and sizing), ``errors``.
"""

from tui.imaging.decode import decode_frame, frame_bytes_from_dataset
from tui.imaging.errors import UndecodableFrame
from tui.imaging.frames import display_size, fit, full_image, preview, render
from tui.imaging.pixelformat import PixelFormat
from tui.imaging.window import (
    CT_PRESETS,
    FROM_DATA,
    Window,
    apply_window,
    auto_window,
    resolve_preset,
    window_for,
)

__all__ = [
    "CT_PRESETS",
    "FROM_DATA",
    "PixelFormat",
    "UndecodableFrame",
    "Window",
    "apply_window",
    "auto_window",
    "decode_frame",
    "display_size",
    "fit",
    "frame_bytes_from_dataset",
    "full_image",
    "preview",
    "render",
    "resolve_preset",
    "window_for",
]
