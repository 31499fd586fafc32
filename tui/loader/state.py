"""Load state of every node (patient list, study, series metadata, series preview).

A node key is a tuple: ``("patients",)``, ``("study", study_uid)`` (its series list),
``("series", study_uid, series_uid)`` (its metadata), ``("preview", study_uid, series_uid)``
(its first frame) and ``("frame", study_uid, series_uid, index)``. Subscribers are told of
every change, synchronously, in the order they happen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

log = logging.getLogger(__name__)

NodeKey = tuple[str, ...]
Subscriber = Callable[[NodeKey, "NodeState"], None]


class LoadState(StrEnum):
    """Where a node is in its life: nothing asked, waiting, loading, done or not."""

    IDLE = "idle"
    QUEUED = "queued"
    LOADING = "loading"
    LOADED = "loaded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NO_IMAGE = "no-image"


@dataclass(frozen=True)
class NodeState:
    """One node's state with its timings; immutable, a new one for every change."""

    state: LoadState = LoadState.IDLE
    queued_at: float | None = None
    started_at: float | None = None
    duration_ms: float | None = None
    bytes: int | None = None
    error: str | None = None
    detail: str | None = None

    @property
    def busy(self) -> bool:
        """True while queued or loading."""
        return self.state in (LoadState.QUEUED, LoadState.LOADING)

    @property
    def done(self) -> bool:
        """True once the node reached an end state (loaded, failed, cancelled, no-image)."""
        return self.state in (
            LoadState.LOADED,
            LoadState.FAILED,
            LoadState.CANCELLED,
            LoadState.NO_IMAGE,
        )

    def label(self, now: float | None = None) -> str:
        """Short text for a row: "queued", "loading 1.2 s", "148 ms", "failed (HTTP 500)"."""
        if self.state is LoadState.QUEUED:
            return "queued"
        if self.state is LoadState.LOADING:
            if self.started_at is None:
                return "loading"
            elapsed = (time.monotonic() if now is None else now) - self.started_at
            return f"loading {max(elapsed, 0.0):.1f} s"
        if self.state is LoadState.LOADED:
            return _ms(self.duration_ms)
        if self.state is LoadState.FAILED:
            return f"failed ({_short(self.error)})" if self.error else "failed"
        if self.state is LoadState.NO_IMAGE:
            return "no image"
        if self.state is LoadState.CANCELLED:
            return "cancelled"
        return ""


def _ms(ms: float | None) -> str:
    if ms is None:
        return "loaded"
    if ms >= 1000:
        return f"{ms / 1000:.1f} s"
    return f"{ms:.0f} ms"


def _short(error: str) -> str:
    """The head of an error message: "HTTP 500: Internal ..." -> "HTTP 500"."""
    head = error.split(":", 1)[0].strip()
    return head if 0 < len(head) <= 40 else error[:40]


class StateStore:
    """Holds every node's state and tells subscribers of every change."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        """Create an empty store; `clock` gives the timestamps (time.monotonic)."""
        self._states: dict[NodeKey, NodeState] = {}
        self._subscribers: list[Subscriber] = []
        self._clock = clock

    def get(self, key: NodeKey) -> NodeState:
        """The node's current state (idle if never touched)."""
        return self._states.get(key, NodeState())

    def keys(self) -> list[NodeKey]:
        """Every node touched so far."""
        return list(self._states)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(key, state)` on every change; returns the unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def set(self, key: NodeKey, state: NodeState) -> None:
        """Record a new state and notify (nothing happens if it did not change)."""
        if self._states.get(key) == state:
            return
        self._states[key] = state
        for callback in list(self._subscribers):
            try:
                callback(key, state)
            except Exception:  # a subscriber's bug must not break loading
                log.exception("load-state subscriber failed")

    def queued(self, key: NodeKey, detail: str | None = None) -> None:
        """Mark the node queued (unless it is already loading)."""
        if self.get(key).state is LoadState.LOADING:
            return
        self.set(key, NodeState(LoadState.QUEUED, queued_at=self._clock(), detail=detail))

    def loading(self, key: NodeKey, detail: str | None = None) -> None:
        """Mark the node loading, keeping when it was queued."""
        old = self.get(key)
        queued_at = old.queued_at if old.state is LoadState.QUEUED else None
        now = self._clock()
        self.set(
            key,
            NodeState(LoadState.LOADING, queued_at=queued_at or now, started_at=now, detail=detail),
        )

    def finish(
        self,
        key: NodeKey,
        state: LoadState,
        *,
        bytes: int | None = None,
        error: str | None = None,
        detail: str | None = None,
        duration_ms: float | None = None,
    ) -> None:
        """Mark an end state; the duration runs from when loading started unless given."""
        old = self.get(key)
        if duration_ms is None and old.started_at is not None:
            duration_ms = (self._clock() - old.started_at) * 1000.0
        self.set(
            key,
            replace(
                old,
                state=state,
                duration_ms=duration_ms,
                bytes=bytes,
                error=error,
                detail=detail if detail is not None else old.detail,
            ),
        )
