"""The one error of the imaging layer: a frame it cannot decode or render."""

from __future__ import annotations

__all__ = ["UndecodableFrame"]


class UndecodableFrame(Exception):
    """The frame can't be decoded or rendered locally; ``reason`` says why (one line).

    The app falls back to the server-rendered JPEG when it sees this.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
