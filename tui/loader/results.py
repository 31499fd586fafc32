"""What the loader hands back: a series' instances ordered for stepping, and one frame's bytes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .strategies import instance_has_pixels, no_pixel_reason, sort_instances

if TYPE_CHECKING:
    from tui.dicomweb.model import Instance


@dataclass(frozen=True)
class SeriesMetadata:
    """One series' instances, ordered for stepping, and how they were obtained."""

    study_uid: str
    series_uid: str
    instances: tuple[Instance, ...]
    frames: tuple[tuple[int, int], ...]
    strategy: str
    ms: float
    bytes: int
    has_pixels: bool
    reason: str | None = None

    @classmethod
    def from_instances(
        cls,
        study_uid: str,
        series_uid: str,
        instances: Sequence[Instance],
        strategy: str,
        ms: float,
        nbytes: int,
    ) -> SeriesMetadata:
        """Order `instances` for stepping and list every frame of those that have pixels."""
        ordered = tuple(sort_instances(instances))
        frames = tuple(
            (i, n)
            for i, inst in enumerate(ordered)
            if instance_has_pixels(inst)
            for n in range(1, max(1, inst.number_of_frames) + 1)
        )
        has_pixels = bool(frames)
        return cls(
            study_uid=study_uid,
            series_uid=series_uid,
            instances=ordered,
            frames=frames,
            strategy=strategy,
            ms=ms,
            bytes=nbytes,
            has_pixels=has_pixels,
            reason=None if has_pixels else no_pixel_reason(ordered),
        )

    @property
    def preview_index(self) -> int:
        """Index into `frames` of the frame to preview first: the middle slice."""
        return len(self.frames) // 2 if self.frames else 0

    def frame_ref(self, index: int) -> tuple[Instance, int]:
        """(instance, 1-based frame number) for an index into `frames`."""
        i, n = self.frames[index]
        return self.instances[i], n


@dataclass(frozen=True)
class FrameResult:
    """One frame's pixel data as the server sent it (decoding is the imaging layer's job)."""

    study_uid: str
    series_uid: str
    index: int
    instance: Instance
    frame_number: int
    data: bytes
    transfer_syntax: str | None
    ms: float
