"""Reusable widgets: the header line, breadcrumbs, the prompt, and a filterable row table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.text import Text
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable, Input, Static

from tui.text import clean

PLACEHOLDER_KEY = "__placeholder__"
MORE_KEY = "__more__"

STATE_STYLES = {
    "queued": "yellow",
    "loading": "bold cyan",
    "loaded": "green",
    "failed": "bold red",
    "cancelled": "magenta",
    "no-image": "dim",
    "idle": "",
}


def state_text(state: object, now: float | None) -> Text:
    """A NodeState as a coloured label ("loading 1.2 s", "148 ms", "failed (HTTP 500)")."""
    if state is None:
        return Text("")
    try:
        label = state.label(now)  # type: ignore[attr-defined]
    except Exception:  # a bad state must not break the row
        label = "?"
    name = str(getattr(getattr(state, "state", None), "value", getattr(state, "state", "")))
    return Text(clean(label, 40), style=STATE_STYLES.get(name, ""))


def cell(value: object, limit: int = 80, style: str = "") -> Text:
    """A table cell from any DICOM value: sanitised, never parsed as markup."""
    return Text(clean(value, limit), style=style)


class ChromeHeader(Static):
    """One line: app, server, user, product and version, requests in flight."""

    DEFAULT_CSS = """
    ChromeHeader { height: 1; background: $primary-background; color: $text; }
    """

    def show(self, server: str, user: str, product: str, in_flight: int) -> None:
        """Redraw from plain values (all sanitised here)."""
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" pacs-tui ", style="bold reverse")
        t.append(" ")
        t.append(clean(server, 40), style="bold")
        if user:
            t.append(f"  user {clean(user, 20)}")
        if product:
            t.append(f"  {clean(product, 30)}", style="dim")
        t.append("  ")
        t.append(f"⇅ {in_flight}", style="bold yellow" if in_flight else "dim")
        self.update(t)


class Breadcrumbs(Static):
    """patient > study > series, plus the active filter."""

    DEFAULT_CSS = """
    Breadcrumbs { height: 1; color: $text-muted; padding: 0 1; }
    """

    def show(self, parts: Sequence[str], filter_text: str = "") -> None:
        """Redraw; parts are raw (sanitised here)."""
        t = Text(no_wrap=True, overflow="ellipsis")
        for i, part in enumerate(parts):
            if i:
                t.append(" > ", style="dim")
            t.append(clean(part, 40), style="bold" if i == len(parts) - 1 else "")
        if filter_text:
            t.append(f"   /{clean(filter_text, 30)}", style="yellow")
        self.update(t)


class Prompt(Input):
    """The `/` filter and `:` command line, docked at the bottom, hidden when idle."""

    DEFAULT_CSS = """
    Prompt { height: 1; border: none; padding: 0 1; display: none;
             background: $boost; }
    Prompt.-active { display: block; }
    Prompt:focus { border: none; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="prompt.cancel", show=False),
        Binding("up", "history(-1)", "Previous", id="prompt.history-up", show=False),
        Binding("down", "history(1)", "Next", id="prompt.history-down", show=False),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.mode = "filter"
        self.can_focus = False  # only while open, so no view hands it the focus by default
        self.history: list[str] = []
        self._history_pos = 0

    def open(self, mode: str, value: str = "") -> None:
        """Show in `filter` or `command` mode and take the focus."""
        self.mode = mode
        self.placeholder = (
            "filter rows (esc clears)"
            if mode == "filter"
            else "command: requests, search, help, browse, quit"
        )
        self.value = value
        self.add_class("-active")
        self.can_focus = True
        self._history_pos = len(self.history)
        self.screen.set_focus(self)

    def close(self) -> None:
        """Hide (the filter value stays applied)."""
        self.remove_class("-active")
        self.can_focus = False

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled(self))

    def action_history(self, step: int) -> None:
        if self.mode != "command" or not self.history:
            return
        self._history_pos = max(0, min(len(self.history), self._history_pos + step))
        self.value = (
            self.history[self._history_pos] if self._history_pos < len(self.history) else ""
        )
        self.cursor_position = len(self.value)

    class Cancelled(Message):
        """Escape pressed in the prompt."""

        def __init__(self, prompt: Prompt) -> None:
            super().__init__()
            self.prompt = prompt


@dataclass
class Row:
    """One table row: its key, its cells, and the text the filter matches."""

    key: str
    cells: list[Text]
    haystack: str = ""
    data: object = field(default=None, repr=False)


class RowTable(DataTable):
    """A DataTable of `Row`s with a placeholder row, a filter and stable cursor on rebuild."""

    BINDINGS = [
        Binding("enter", "open_row", "Open", id="open"),
        Binding("j", "cursor_down", "Down", id="cursor-down", show=False),
        Binding("k", "cursor_up", "Up", id="cursor-up", show=False),
        Binding("g,home", "first_row", "First row", id="first-row", show=False),
        Binding("G,end", "last_row", "Last row", id="last-row", show=False),
        Binding("l,right", "pane(1)", "Next pane", id="next-pane", show=False),
        Binding("h,left", "pane(-1)", "Previous pane", id="prev-pane", show=False),
    ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open_row":
            return hasattr(self.screen, "action_open")
        return True

    def action_open_row(self) -> None:
        """Open the row: the screen's `action_open` runs now (so focus moves before the next
        key is looked at: typed-ahead keys land in the right pane), else a RowSelected."""
        action = getattr(self.screen, "action_open", None)
        if action is not None:
            action()
        else:
            self.action_select_cursor()

    def action_first_row(self) -> None:
        """Cursor to the first row."""
        if self.row_count:
            self.move_cursor(row=0)

    def action_last_row(self) -> None:
        """Cursor to the last row (which loads the next page where there is one)."""
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)

    def action_pane(self, step: int) -> None:
        """Move between panes (the screen decides what that means)."""
        action = getattr(self.screen, "action_pane", None)
        if action is not None:
            action(step)

    def __init__(self, columns: Sequence[tuple[str, str, int | None]], **kwargs: object) -> None:
        super().__init__(cursor_type="row", **kwargs)  # type: ignore[arg-type]
        self.column_keys = [key for _, key, _ in columns]
        for label, key, width in columns:
            self.add_column(label, key=key, width=width)
        self.items: list[Row] = []
        self.filter_text = ""
        self.placeholder: str | None = None
        self.more: str | None = None

    # -- content -----------------------------------------------------------------------------
    def _blank(self, first: Text) -> list[Text]:
        return [first] + [Text("") for _ in self.column_keys[1:]]

    def show_placeholder(self, text: str) -> None:
        """Replace the rows by one placeholder line ("loading…", "failed: …", "no series")."""
        self.items = []
        self.placeholder = text
        self._rebuild()

    def set_rows(self, rows: Sequence[Row], *, empty: str = "(none)") -> None:
        """Replace all rows, keeping the cursor on the same key when it is still there."""
        self.items = list(rows)
        self.placeholder = None if rows else empty
        self._rebuild()

    def append_rows(self, rows: Sequence[Row]) -> None:
        """Add rows at the end (next page) without moving the cursor."""
        self.items.extend(rows)
        self.placeholder = None if self.items else self.placeholder
        self._rebuild()

    def set_more(self, text: str | None) -> None:
        """Show (or remove) a trailing "loading more…" line."""
        if text == self.more:
            return
        self.more = text
        self._rebuild()

    def set_filter(self, text: str) -> None:
        """Show only rows whose text contains `text` (case-insensitive)."""
        self.filter_text = text
        self._rebuild()

    def visible_rows(self) -> list[Row]:
        """Rows passing the filter."""
        needle = self.filter_text.casefold()
        if not needle:
            return self.items
        return [r for r in self.items if needle in r.haystack.casefold()]

    def _rebuild(self) -> None:
        current = self.current_key()
        row_index = self.cursor_row
        self.clear()
        rows = self.visible_rows()
        if not rows:
            if self.placeholder is not None:
                text = self.placeholder
            elif self.items:
                text = f"no row matches /{self.filter_text}"
            else:
                text = "(none)"
            self.add_row(
                *self._blank(Text(clean(text, 120), style="dim italic")), key=PLACEHOLDER_KEY
            )
        for row in rows:
            self.add_row(*row.cells, key=row.key)
        if self.more and rows:
            self.add_row(*self._blank(Text(self.more, style="dim italic")), key=MORE_KEY)
        if current is not None and current in self.rows:
            self.move_cursor(row=self.get_row_index(current), animate=False)
        elif self.row_count:
            self.move_cursor(row=min(max(row_index, 0), self.row_count - 1), animate=False)

    # -- queries -----------------------------------------------------------------------------
    def current_key(self) -> str | None:
        """Key of the row under the cursor (None when empty or on a placeholder)."""
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value
        except Exception:
            return None
        return None if key in (PLACEHOLDER_KEY, MORE_KEY) else key

    def current_row(self) -> Row | None:
        """The Row under the cursor."""
        key = self.current_key()
        return next((r for r in self.items if r.key == key), None) if key else None

    def row_for(self, key: str) -> Row | None:
        """The Row with this key."""
        return next((r for r in self.items if r.key == key), None)

    def set_cell(self, key: str, column: str, value: Text) -> None:
        """Change one cell (stored and shown, if the row is visible)."""
        row = self.row_for(key)
        if row is None:
            return
        idx = self.column_keys.index(column)
        row.cells[idx] = value
        if key in self.rows:
            self.update_cell(key, column, value)

    def select_key(self, key: str) -> bool:
        """Move the cursor to the row with this key."""
        if key in self.rows:
            self.move_cursor(row=self.get_row_index(key), animate=False)
            return True
        return False
