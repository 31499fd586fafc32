"""DICOM strings are data: make them safe to show in a terminal.

Values from a PACS can hold anything: Rich markup (``[red]``), ANSI escape sequences,
carriage returns, NULs, a megabyte of text. Everything shown on screen goes through
`clean` (plain str, for Text objects and table cells) or `escape_markup` (for places that
parse markup). No Textual/Rich import here, so any layer may use it. `fmt_bytes` is the one
byte-size formatter of the screen and the reports.
"""

from __future__ import annotations

import re
import unicodedata

ESC_PLACEHOLDER = "␛"
CONTROL_PLACEHOLDER = "?"
ELLIPSIS = "…"

# C0 and C1 controls, DEL; tab/newline are folded to a space instead.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[\t\n\r\f\v\u2028\u2029]+")


def _replace(match: re.Match[str]) -> str:
    return ESC_PLACEHOLDER if match.group(0) == "\x1b" else CONTROL_PLACEHOLDER


def clean(value: object, limit: int | None = 200) -> str:
    """One safe display line: control chars become visible placeholders, long values end in "…".

    ``None`` gives "". Escape (0x1b) shows as "␛", other controls as "?", line breaks and
    tabs as one space; bidi overrides and other format characters (Cf) are dropped so that
    they cannot reorder the rest of the line.
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    text = _SPACES.sub(" ", text)
    text = _CONTROL.sub(_replace, text)
    if any(unicodedata.category(ch) == "Cf" for ch in text):
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + ELLIPSIS
    return text


def escape_markup(value: object, limit: int | None = 200) -> str:
    """`clean` plus Rich markup escaping, for strings that will be parsed as markup."""
    text = clean(value, limit)
    # Same rule as rich.markup.escape: a backslash before "[" that opens a tag.
    return re.sub(r"(\\*)(\[[a-zA-Z#/@].*?\])", r"\1\1\\\2", text)


def fmt_bytes(n: int | None) -> str:
    """A byte count for people, in decimal units: 941 B, 8.6 kB, 4.01 MB, 1.20 GB ("?" for None)."""
    if n is None:
        return "?"
    if n >= 1_000_000_000:
        return f"{n / 1_000_000_000:.2f} GB"
    if n >= 1_000_000:
        return f"{n / 1_000_000:.2f} MB"
    return f"{n / 1000:.1f} kB" if n >= 1000 else f"{n} B"
