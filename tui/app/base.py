"""The frame every view shares: header, breadcrumbs, body, prompt, footer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input

from tui.app.widgets import Breadcrumbs, ChromeHeader, Prompt

if TYPE_CHECKING:
    from tui.app.app import PacsApp


class PacsScreen(Screen):
    """A view: subclasses fill `compose_body`, `crumbs`, `apply_filter`, `node_changed`."""

    BINDINGS = [
        Binding("slash", "filter", "Filter", id="filter"),
        Binding("escape", "back", "Back", id="back"),
        Binding("r", "retry", "Retry", id="retry"),
    ]

    view_name = "view"
    filter_text = ""

    @property
    def pacs(self) -> PacsApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield ChromeHeader(id="chrome")
        yield Breadcrumbs(id="crumbs")
        yield from self.compose_body()
        yield Prompt(id="prompt")
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """The view's own widgets."""
        yield from ()

    def crumbs(self) -> list[str]:
        """Breadcrumb parts, outermost first (raw strings; sanitised when shown)."""
        return [self.view_name]

    def on_mount(self) -> None:
        self.refresh_chrome()

    def on_screen_resume(self) -> None:
        self.refresh_chrome()

    def refresh_chrome(self) -> None:
        """Redraw header and breadcrumbs."""
        try:
            header = self.query_one(ChromeHeader)
            crumbs = self.query_one(Breadcrumbs)
        except Exception:
            return
        self.pacs.show_header(header)
        crumbs.show(self.crumbs(), self.filter_text)

    # -- prompt --------------------------------------------------------------------------------
    def open_prompt(self, mode: str) -> None:
        """Open the bottom line for a filter or a command."""
        prompt = self.query_one(Prompt)
        self._focus_before: Widget | None = self.focused if self.focused is not prompt else None
        prompt.open(mode, self.filter_text if mode == "filter" else "")

    def _close_prompt(self) -> None:
        prompt = self.query_one(Prompt)
        prompt.close()
        target = getattr(self, "_focus_before", None)
        if target is not None and target.is_attached:
            self.set_focus(target)
        else:
            self.focus_next()

    def action_filter(self) -> None:
        self.open_prompt("filter")

    def on_input_changed(self, event: Input.Changed) -> None:
        if isinstance(event.input, Prompt) and event.input.mode == "filter":
            event.stop()
            self.filter_text = event.value
            self.apply_filter(event.value)
            self.refresh_chrome()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if not isinstance(event.input, Prompt):
            return
        event.stop()
        prompt = event.input
        value = event.value.strip()
        self._close_prompt()
        if prompt.mode == "command" and value:
            prompt.history.append(value)
            self.pacs.run_command_line(value)

    def on_prompt_cancelled(self, event: Prompt.Cancelled) -> None:
        event.stop()
        if event.prompt.mode == "filter":
            self.filter_text = ""
            self.apply_filter("")
            self.refresh_chrome()
        self._close_prompt()

    # -- hooks ---------------------------------------------------------------------------------
    def apply_filter(self, text: str) -> None:
        """Show only the rows matching `text`."""

    def node_changed(self, key: tuple[str, ...], state: Any) -> None:
        """The loader changed a node's state."""

    def tick(self) -> None:
        """Something is loading: refresh running times."""

    def requests_changed(self) -> None:
        """The request log changed."""

    def action_back(self) -> None:
        if self.filter_text:
            self.filter_text = ""
            self.apply_filter("")
            self.refresh_chrome()
            return
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    def action_retry(self) -> None:
        """Retry what failed (or refresh) in this view."""
