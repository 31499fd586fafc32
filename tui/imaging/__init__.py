"""imaging layer: one frame's bytes -> numpy -> windowed PIL image (no network, no Textual)."""

from tui.imaging.frames import (
    CT_PRESETS,
    FROM_DATA,
    PixelFormat,
    UndecodableFrame,
    Window,
    apply_window,
    auto_window,
    decode_frame,
    display_size,
    fit,
    frame_bytes_from_dataset,
    full_image,
    preview,
    render,
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
