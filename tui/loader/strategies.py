"""Metadata strategies (qido, wado, auto), slice ordering and the no-pixel-data verdict.

`qido` asks QIDO-RS /instances with the configured includefield list (cheap: only the tags a
viewer needs); `wado` asks WADO-RS series /metadata (everything); `auto` asks qido and falls
back to wado when the answer lacks what is needed to order and window the images, and
remembers per server URL which one worked.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui.dicomweb.model import Instance

log = logging.getLogger(__name__)

STRATEGIES = ("auto", "qido", "wado")

# SOP classes that never carry pixel data, by UID prefix -> short reason.
_NON_IMAGE_PREFIXES: tuple[tuple[str, str], ...] = (
    ("1.2.840.10008.5.1.4.1.1.88.59", "KO"),  # Key Object Selection
    ("1.2.840.10008.5.1.4.1.1.88.", "SR"),  # every Structured Report class
    ("1.2.840.10008.5.1.4.1.1.104.", "encapsulated document"),
    ("1.2.840.10008.5.1.4.1.1.11.", "presentation state"),
    ("1.2.840.10008.5.1.4.1.1.481.2", "RT dose"),  # may have pixels; checked by Rows below
    ("1.2.840.10008.5.1.4.1.1.481.3", "RT structure set"),
    ("1.2.840.10008.5.1.4.1.1.481.5", "RT plan"),
    ("1.2.840.10008.5.1.4.1.1.66", "raw data"),
    ("1.2.840.10008.5.1.4.1.1.9.", "waveform"),
)


def non_image_reason(sop_class_uid: str | None) -> str | None:
    """A short name ("SR", "KO", ...) if the SOP class never has pixel data, else None."""
    if not sop_class_uid:
        return None
    for prefix, reason in _NON_IMAGE_PREFIXES:
        if reason == "RT dose":
            continue
        if sop_class_uid == prefix or sop_class_uid.startswith(prefix):
            return reason
    return None


def instance_has_pixels(inst: Instance) -> bool:
    """True when the instance is an image: not a non-image SOP class and Rows/Columns known."""
    if non_image_reason(inst.sop_class_uid) is not None:
        return False
    return bool(inst.rows and inst.columns)


def no_pixel_reason(instances: Sequence[Instance]) -> str:
    """Why a series has no image: "no pixel data (SR)", or plain "no pixel data"."""
    reasons = {non_image_reason(i.sop_class_uid) for i in instances} - {None}
    if not instances:
        return "no instances"
    if len(reasons) == 1:
        return f"no pixel data ({reasons.pop()})"
    return "no pixel data"


def sufficient(instances: Sequence[Instance]) -> bool:
    """True when every image instance has what is needed to order and window it.

    Needed: Rows, Columns, BitsAllocated, PhotometricInterpretation and one of
    ImagePositionPatient / InstanceNumber. Instances of a known non-image SOP class are
    fine as they are; an answer without SOPClassUID and without Rows is not sufficient.
    """
    if not instances:
        return True
    for inst in instances:
        if non_image_reason(inst.sop_class_uid) is not None:
            continue
        if inst.sop_class_uid is None and not inst.rows:
            return False
        if not (inst.rows and inst.columns and inst.bits_allocated and inst.photometric):
            return False
        if inst.image_position is None and inst.number is None:
            return False
    return True


def sort_instances(instances: Sequence[Instance]) -> list[Instance]:
    """Order along the slice normal (ImagePositionPatient projected on the normal from
    ImageOrientationPatient) when every image has both; otherwise by InstanceNumber
    (instances without one last, server order kept for ties)."""
    items = list(instances)
    images = [i for i in items if instance_has_pixels(i)]
    if len(images) > 1 and all(_geometry_ok(i) for i in images):
        normal = _normal(images[0].image_orientation or ())

        def along(inst: Instance) -> tuple[int, float, int]:
            if not _geometry_ok(inst):
                return (1, 0.0, inst.number or 0)
            pos = inst.image_position or (0.0, 0.0, 0.0)
            proj = sum(p * n for p, n in zip(pos[:3], normal, strict=False))
            return (0, proj, inst.number or 0)

        return sorted(items, key=along)
    return sorted(items, key=lambda i: (i.number is None, i.number or 0))


def _geometry_ok(inst: Instance) -> bool:
    return (
        inst.image_position is not None
        and len(inst.image_position) >= 3
        and inst.image_orientation is not None
        and len(inst.image_orientation) >= 6
    )


def _normal(iop: Sequence[float]) -> tuple[float, float, float]:
    r, c = iop[:3], iop[3:6]
    return (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])


class StrategyMemory:
    """Which strategy worked for which server URL (for `auto`)."""

    def __init__(self) -> None:
        """An empty memory."""
        self._choice: dict[str, str] = {}

    def get(self, url: str) -> str | None:
        """The remembered strategy for `url`, if any."""
        return self._choice.get(url)

    def remember(self, url: str, strategy: str) -> None:
        """Remember that `strategy` is the one to use for `url`."""
        self._choice[url] = strategy

    def forget(self, url: str | None = None) -> None:
        """Forget one server's choice (or all)."""
        if url is None:
            self._choice.clear()
        else:
            self._choice.pop(url, None)


#: Shared by every loader of the process (the choice is per server, not per loader).
DEFAULT_MEMORY = StrategyMemory()


async def fetch_instances(
    client: Any,
    study_uid: str,
    series_uid: str,
    *,
    mode: str,
    includefield: Sequence[str],
    purpose: str,
    server_url: str,
    memory: StrategyMemory,
) -> tuple[list[Instance], str]:
    """Fetch one series' instances with the strategy `mode`; returns (instances, strategy used)."""
    if mode not in STRATEGIES:
        raise ValueError(f"unknown metadata strategy {mode!r}")
    if mode == "wado" or (mode == "auto" and memory.get(server_url) == "wado"):
        return list(await client.series_metadata(study_uid, series_uid, purpose=purpose)), "wado"
    found = list(
        await client.search_instances(study_uid, series_uid, includefield, purpose=purpose)
    )
    if mode == "qido":
        return found, "qido"
    if sufficient(found):
        if memory.get(server_url) is None:
            memory.remember(server_url, "qido")
        return found, "qido"
    log.info(
        "QIDO answer for series %s lacks needed tags; falling back to WADO /metadata", series_uid
    )
    memory.remember(server_url, "wado")
    return list(await client.series_metadata(study_uid, series_uid, purpose=purpose)), "wado"
