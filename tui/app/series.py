"""Series view: details beside the preview; slices, windows and invert from the keyboard."""

from __future__ import annotations

import asyncio
import io
import math
import time
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from tui.app.base import PacsScreen
from tui.app.browse import person
from tui.app.widgets import state_text
from tui.text import clean, fmt_bytes

TRANSFER_SYNTAXES = {
    "1.2.840.10008.1.2": "Implicit VR LE",
    "1.2.840.10008.1.2.1": "Explicit VR LE",
    "1.2.840.10008.1.2.2": "Explicit VR BE",
    "1.2.840.10008.1.2.1.99": "Deflated LE",
    "1.2.840.10008.1.2.5": "RLE Lossless",
    "1.2.840.10008.1.2.4.50": "JPEG Baseline",
    "1.2.840.10008.1.2.4.51": "JPEG Extended",
    "1.2.840.10008.1.2.4.57": "JPEG Lossless",
    "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
    "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
    "1.2.840.10008.1.2.4.81": "JPEG-LS Near-lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
}

PRESET_KEYS = {"1": "brain", "2": "lung", "3": "bone", "4": "soft tissue", "5": "mediastinum"}


def syntax_name(uid: str | None) -> str:
    """Readable transfer syntax ("RLE Lossless"), the UID when unknown."""
    if not uid:
        return "?"
    return TRANSFER_SYNTAXES.get(uid, uid)


class SeriesScreen(PacsScreen):
    """One series: details and a preview that appears as soon as its first frame arrives."""

    view_name = "series"

    BINDINGS = [
        Binding("j,down,right_square_bracket", "step(1)", "Next slice", id="slice-next"),
        Binding("k,up,left_square_bracket", "step(-1)", "Prev slice", id="slice-prev", show=False),
        Binding("g,home", "goto(0)", "First", id="slice-first", show=False),
        Binding("G,end", "goto(-1)", "Last", id="slice-last", show=False),
        Binding("1", "preset('1')", "Brain", id="preset-brain", show=False),
        Binding("2", "preset('2')", "Lung", id="preset-lung", show=False),
        Binding("3", "preset('3')", "Bone", id="preset-bone", show=False),
        Binding("4", "preset('4')", "Soft tissue", id="preset-soft", show=False),
        Binding("5", "preset('5')", "Mediastinum", id="preset-mediastinum", show=False),
        Binding("0", "preset('0')", "Window from data", id="preset-data", show=False),
        Binding("v", "cycle_window", "Next header window", id="window-cycle", show=False),
        Binding("w", "window(0, -0.1)", "Narrower", id="width-down", show=False),
        Binding("W", "window(0, 0.1)", "Wider", id="width-up", show=False),
        Binding("c", "window(-0.05, 0)", "Center down", id="center-down", show=False),
        Binding("C", "window(0.05, 0)", "Center up", id="center-up", show=False),
        Binding("i", "invert", "Invert", id="invert"),
    ]

    def __init__(self, study: Any, series: Any, patient: Any = None) -> None:
        super().__init__()
        self.study = study
        self.series = series
        self.patient = patient
        self.study_uid: str = series.study_uid
        self.series_uid: str = series.series_uid
        self.metadata: Any = None
        self.meta_error: str | None = None
        self.index = 0
        self.window: Any = None  # None: header window (window_index) or from data
        self.window_index = 0
        self.preset = "header"
        self.invert = False
        self.last_window: Any = None
        self.image_note = ""
        self.image_widget: Any = None
        self.frame_arrived_at: float | None = None
        self.frame_shown_at: float | None = None
        self.shown_index: int | None = None
        self.decode_ms: float | None = None
        self.frame_syntax: str | None = None
        self._layout_waits = 0

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="series-body"):
            yield Static(id="details")
            with Vertical(id="preview-box"):
                yield Static("loading…", id="preview-msg")
                yield Static("", id="counter")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#preview-box").border_title = "Preview"
        self.query_one("#details").border_title = "Series"
        self.render_details()
        self.run_worker(self._load(), group="metadata", exclusive=True, exit_on_error=False)

    # -- loading -------------------------------------------------------------------------------
    async def _load(self) -> None:
        loader = self.pacs.loader
        self.meta_error = None
        try:
            self.metadata = await loader.metadata(self.study_uid, self.series_uid)
        except Exception as exc:
            self.meta_error = clean(getattr(exc, "message", None) or exc, 200)
            self._message(f"failed: {self.meta_error}\n(r to retry)", "bold red")
            self.render_details()
            return
        self.render_details()
        if not self.metadata.frames or not self.metadata.has_pixels:
            # The loader's verdict (strategies.no_pixel_reason) says why: "no pixel data (SR)".
            self._no_image(clean(self.metadata.reason or "no pixel data", 120))
            return
        self.index = max(0, min(self.metadata.preview_index, len(self.metadata.frames) - 1))
        self.show_frame()

    def _no_image(self, reason: str) -> None:
        self._message(f"no image\n{reason}", "dim")
        self.image_note = reason
        self._update_counter()
        self.render_details()

    def _message(self, text: str, style: str = "") -> None:
        msg = self.query_one("#preview-msg", Static)
        msg.update(Text(text, style=style))
        msg.display = True

    def show_frame(self) -> None:
        """Fetch and show the frame at self.index (older requests are dropped)."""
        self._update_counter()
        if self.pacs.image_class is None:
            self._message("image mode off", "dim")
            return
        if self.image_widget is None:
            self._message("loading image…", "dim italic")
        box = self.query_one("#preview-box").content_size
        if (box.width < 4 or box.height < 3) and self._layout_waits < 5:
            # Cached metadata arrives before the first layout: size the image once laid out.
            self._layout_waits += 1
            self.call_after_refresh(self.show_frame)
            return
        self.run_worker(self._frame(self.index), group="frame", exclusive=True, exit_on_error=False)

    def on_resize(self) -> None:
        """Re-fit the shown frame to the new size (the frame itself is cached)."""
        if self.shown_index is not None:
            self._layout_waits = 0
            self.call_after_refresh(self.show_frame)

    def _target_pixels(self) -> tuple[int, int, int, int]:
        box = self.query_one("#preview-box")
        cols = max(4, box.content_size.width)
        rows = max(2, box.content_size.height - 1)  # the counter line
        if self.pacs.image_mode in ("sixel", "kitty", "SixelImage", "TGPImage"):
            try:
                from textual_image._terminal import get_cell_size

                cw, ch = get_cell_size()
            except Exception:
                cw, ch = 10, 20
            return cols * cw, rows * ch, cw, ch
        return cols, rows * 2, 1, 2

    async def _frame(self, index: int) -> None:
        loader = self.pacs.loader
        try:
            result = await loader.frame(self.study_uid, self.series_uid, index)
        except Exception as exc:
            if index == self.index:
                state = loader.state(("preview", self.study_uid, self.series_uid))
                if str(getattr(state.state, "value", "")) == "no-image":
                    self._no_image(clean(state.detail or state.error or "no image", 120))
                else:
                    self._message(
                        f"frame failed: {clean(getattr(exc, 'message', exc), 160)}\n(r to retry)",
                        "bold red",
                    )
            return
        if index != self.index:
            return  # the user moved on
        self.frame_arrived_at = time.perf_counter()
        self.frame_syntax = result.transfer_syntax
        pw, ph, cw, ch = self._target_pixels()
        window, invert = self.window, self.invert
        try:
            image, used, ms = await asyncio.to_thread(
                self._render_frame, result, window, self.window_index, invert, pw, ph
            )
            note = "decoded locally"
        except Exception as exc:  # UndecodableFrame or a bug in a codec: ask the server
            reason = clean(getattr(exc, "reason", None) or exc, 80)
            try:
                image, used, ms = await self._server_rendered(result, pw, ph)
            except Exception as exc2:
                if index == self.index:
                    self._message(
                        f"cannot show this frame: {reason}\nserver render failed: "
                        f"{clean(getattr(exc2, 'message', exc2), 80)}",
                        "bold red",
                    )
                return
            note = f"server-rendered JPEG (local decode failed: {reason})"
        if index != self.index:
            return
        self.last_window = used
        self.image_note = note
        self.decode_ms = ms
        self._set_image(image, cw, ch)
        self.shown_index = index
        self.render_details()

    def _render_frame(
        self, result: Any, window: Any, window_index: int, invert: bool, pw: int, ph: int
    ) -> tuple[Any, Any, float]:
        from tui.imaging.decode import decode_frame
        from tui.imaging.frames import fit, render
        from tui.imaging.pixelformat import PixelFormat
        from tui.imaging.window import window_for

        clock = self.pacs.clock
        t0 = clock()
        fmt = PixelFormat.from_dicom_json(result.instance.raw, result.transfer_syntax)
        arr = decode_frame(result.data, fmt, result.transfer_syntax)
        used = window if window is not None else window_for(fmt, arr, window_index)
        image = fit(render(arr, fmt, used, invert), pw, ph, upscale=True)
        return image, used, (clock() - t0) * 1000

    async def _server_rendered(self, result: Any, pw: int, ph: int) -> tuple[Any, Any, float]:
        from PIL import Image as PILImage

        from tui.imaging.frames import fit

        clock = self.pacs.clock
        t0 = clock()
        window = self.window
        data = await self.pacs.client.rendered(
            self.study_uid,
            self.series_uid,
            result.instance.sop_uid,
            result.frame_number,
            viewport=(pw, ph),
            window=(window.center, window.width) if window else None,
        )

        def decode() -> Any:
            img = PILImage.open(io.BytesIO(data))
            img.load()
            return fit(img.convert("RGB"), pw, ph, upscale=True)

        image = await asyncio.to_thread(decode)
        return image, window, (clock() - t0) * 1000

    def _set_image(self, image: Any, cw: int, ch: int) -> None:
        cols = max(1, math.ceil(image.width / cw))
        rows = max(1, math.ceil(image.height / ch))
        if self.image_widget is None:
            self.image_widget = self.pacs.image_class(image, id="image")  # type: ignore[misc]
            self.image_widget.styles.width = cols
            self.image_widget.styles.height = rows
            self.query_one("#preview-box").mount(self.image_widget, before="#counter")
        else:
            self.image_widget.styles.width = cols
            self.image_widget.styles.height = rows
            self.image_widget.image = image
        self.query_one("#preview-msg").display = False
        self._update_counter()
        self.call_after_refresh(self._stamp_shown)

    def _stamp_shown(self) -> None:
        self.frame_shown_at = time.perf_counter()

    # -- details -------------------------------------------------------------------------------
    def _update_counter(self) -> None:
        total = len(self.metadata.frames) if self.metadata is not None else 0
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f"{self.index + 1}/{total}" if total else "–/–", style="bold")
        window = self.window or self.last_window
        if window is not None:
            t.append(f"  C {window.center:g} W {window.width:g}")
        t.append(f"  {self.preset}", style="dim")
        if self.invert:
            t.append("  inverted", style="yellow")
        self.query_one("#counter", Static).update(t)

    def render_details(self) -> None:
        """Fill the details pane from what is known now."""
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")

        def add(label: str, value: object, style: str = "") -> None:
            grid.add_row(label, Text(clean(value, 120), style=style))

        s = self.series
        if self.patient is not None:
            add("Patient", f"{person(self.patient.name)} ({self.patient.patient_id or '?'})")
        if self.study is not None:
            date = self.study.study_date.isoformat() if self.study.study_date else ""
            add("Study", f"{date} {self.study.description or ''}".strip())
        add(
            "Series",
            f"#{s.number if s.number is not None else '?'} {s.modality or ''} "
            f"{s.description or ''}".strip(),
        )
        md = self.metadata
        loader = self.pacs.loader
        meta_state = loader.state(("series", self.study_uid, self.series_uid))
        if md is None:
            if self.meta_error:
                add("Metadata", f"failed: {self.meta_error}", "bold red")
            else:
                grid.add_row("Metadata", state_text(meta_state, self.pacs.clock()))
        else:
            first = next(
                (i for i in md.instances if i.rows), md.instances[0] if md.instances else None
            )
            nframes = len(md.frames)
            inst = f"{len(md.instances)}" + (
                f" ({nframes} frames)" if nframes != len(md.instances) else ""
            )
            add("Instances", inst)
            if first is not None:
                if first.rows and first.columns:
                    add(
                        "Size",
                        f"{first.columns} x {first.rows}"
                        f"{'' if not first.bits_stored else f', {first.bits_stored} bit'}",
                    )
                add("Photometric", first.photometric or "?")
                add("Syntax", syntax_name(first.transfer_syntax_uid or self.frame_syntax))
                if first.pixel_spacing:
                    add("Spacing", " x ".join(f"{v:g}" for v in first.pixel_spacing[:2]))
            add("Metadata", f"{md.strategy} · {md.ms:.0f} ms · {fmt_bytes(md.bytes)}")
        if self.image_note:
            add("Image", self.image_note, "yellow" if self.image_note.startswith("server") else "")
        if self.decode_ms is not None:
            add("Decode", f"{self.decode_ms:.0f} ms")
        self.query_one("#details", Static).update(grid)

    def crumbs(self) -> list[str]:
        parts = []
        if self.patient is not None:
            parts.append(person(self.patient.name) or self.patient.patient_id or "(no name)")
        if self.study is not None:
            parts.append(
                self.study.description
                or (self.study.study_date.isoformat() if self.study.study_date else "study")
            )
        s = self.series
        parts.append(
            f"#{s.number if s.number is not None else '?'} {s.modality or ''} "
            f"{s.description or ''}".strip()
        )
        return parts

    # -- keys ----------------------------------------------------------------------------------
    def _can_step(self) -> bool:
        return self.metadata is not None and bool(self.metadata.frames) and self.metadata.has_pixels

    def action_step(self, step: int) -> None:
        if not self._can_step():
            return
        index = max(0, min(len(self.metadata.frames) - 1, self.index + step))
        if index != self.index:
            self.index = index
            self.show_frame()

    def action_goto(self, index: int) -> None:
        if not self._can_step():
            return
        self.index = len(self.metadata.frames) - 1 if index < 0 else 0
        self.show_frame()

    def action_preset(self, key: str) -> None:
        from tui.imaging.window import CT_PRESETS

        if key == "0":
            self.window, self.preset = None, "header"
        else:
            name = PRESET_KEYS[key]
            self.window, self.preset = CT_PRESETS.get(name), name
        self._redraw()

    def action_cycle_window(self) -> None:
        self.window_index += 1
        self.window, self.preset = None, f"header #{self.window_index + 1}"
        self._redraw()

    def action_window(self, dc: float, dw: float) -> None:
        base = self.window or self.last_window
        if base is None:
            return
        width = max(1.0, base.width)
        self.window = base.shift(dc * width, dw * width)
        self.preset = "manual"
        self._redraw()

    def action_invert(self) -> None:
        self.invert = not self.invert
        self._redraw()

    def _redraw(self) -> None:
        if self._can_step():
            self.show_frame()
        else:
            self._update_counter()

    def action_retry(self) -> None:
        loader = self.pacs.loader
        if self.metadata is None:
            loader.retry(("series", self.study_uid, self.series_uid))
            self._message("loading…", "dim italic")
            self.run_worker(self._load(), group="metadata", exclusive=True, exit_on_error=False)
        else:
            loader.retry(("preview", self.study_uid, self.series_uid))
            self.show_frame()

    def action_back(self) -> None:
        if self.filter_text:
            super().action_back()
            return
        self.app.pop_screen()

    def node_changed(self, key: tuple[str, ...], state: Any) -> None:
        if (
            len(key) >= 3
            and key[1] == self.study_uid
            and key[2] == self.series_uid
            and self.metadata is None
            and self.is_mounted
        ):
            self.render_details()

    def tick(self) -> None:
        if self.metadata is None and self.meta_error is None:
            self.render_details()
