"""Search form: patient name or ID, date range, modality, accession -> a server query."""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from tui.text import clean

_DATE = re.compile(r"^\d{8}$")

FIELDS = [
    ("name", "Patient name", "Doe* (wildcards * ?)"),
    ("pid", "Patient ID", "ID or prefix*"),
    ("date_from", "Date from", "YYYYMMDD"),
    ("date_to", "Date to", "YYYYMMDD"),
    ("modality", "Modality", "CT, MR, …"),
    ("accession", "Accession", ""),
]


def _digits(value: str) -> str:
    return value.replace("-", "").replace("/", "").replace(".", "").strip()


def build_query(values: dict[str, str]) -> Any:
    """A StudyQuery from the form values; ValueError with a message when a date is bad."""
    from tui.dicomweb.query import StudyQuery

    date_from, date_to = _digits(values.get("date_from", "")), _digits(values.get("date_to", ""))
    for label, value in (("from", date_from), ("to", date_to)):
        if value and not _DATE.match(value):
            raise ValueError(f"date {label}: expected YYYYMMDD")
    date = None
    if date_from or date_to:
        date = date_from if date_from == date_to else f"{date_from}-{date_to}"
    modality = values.get("modality", "").strip().upper()
    mods = [m for m in re.split(r"[ ,/\\]+", modality) if m] or None
    return StudyQuery(
        patient_name=values.get("name", "").strip() or None,
        patient_id=values.get("pid", "").strip() or None,
        study_date=date,
        modalities=mods,
        accession=values.get("accession", "").strip() or None,
    )


class SearchForm(ModalScreen[Any]):
    """Enter submits, esc cancels; an empty form lists everything."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="search.cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="search-box") as box:
            box.border_title = "Search studies"
            box.border_subtitle = "enter search · esc cancel"
            for key, label, placeholder in FIELDS:
                yield Label(label)
                yield Input(placeholder=placeholder, id=f"search-{key}")
            yield Static("", id="search-error")

    def values(self) -> dict[str, str]:
        """The form's current values."""
        return {key: self.query_one(f"#search-{key}", Input).value for key, _, _ in FIELDS}

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            query = build_query(self.values())
            query.params()  # the data layer validates (InvalidQuery) before anything is sent
        except Exception as exc:
            # Text, not a str: the message may quote what was typed, which is not markup.
            message = clean(getattr(exc, "message", None) or exc, 200)
            self.query_one("#search-error", Static).update(Text(message))
            return
        self.dismiss(query)

    def action_cancel(self) -> None:
        self.dismiss(None)
