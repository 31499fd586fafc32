"""Help: the keys of the view underneath, as they are bound now (keymap applied)."""

from __future__ import annotations

import dataclasses

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from tui.text import clean


def key_rows(screen: Screen) -> list[tuple[str, str, str]]:
    """(keys, description, binding id) of every binding active on `screen`, grouped by
    binding; the id is what `[keys]` in the config remaps."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if not binding.id or not binding.description:
            continue
        ident = (binding.id or binding.action, binding.description)
        try:
            display = screen.app.get_key_display(dataclasses.replace(binding, key=key))
        except Exception:
            display = key
        keys = grouped.setdefault(ident, [])
        if display not in keys:
            keys.append(display)
    return [(", ".join(keys), desc, ident) for (ident, desc), keys in grouped.items()]


class HelpScreen(ModalScreen[None]):
    """Lists the keys of the view it was opened from."""

    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close", id="help.close"),
    ]

    def __init__(self, under: Screen) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        name = getattr(self.under, "view_name", "view")
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        table.add_column(style="dim")
        for keys, desc, ident in key_rows(self.under):
            table.add_row(Text(clean(keys, 40)), Text(clean(desc, 60)), Text(clean(ident, 40)))
        box = VerticalScroll(Static(table), id="help-box")
        box.border_title = f"Keys: {name}"
        box.border_subtitle = "remap by id in config.toml · esc to close"
        yield box

    def action_close(self) -> None:
        self.dismiss(None)
