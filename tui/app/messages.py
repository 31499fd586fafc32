"""Textual messages that carry loader and request-log events into the app."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class NodeChanged(Message):
    """The loader changed the state of one node; a newer state for the same key replaces it."""

    def __init__(self, key: tuple[str, ...], state: Any) -> None:
        super().__init__()
        self.key = key
        self.state = state

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, NodeChanged) and message.key == self.key


class RequestsChanged(Message):
    """The request log changed (a request started or ended); coalesced."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RequestsChanged)


class ServerInfoReady(Message):
    """The server answered who it is (product, version)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
