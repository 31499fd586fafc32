"""loader layer: what to fetch, when, in which order; load states; caches. No Textual."""

from .cache import DiskCache, MemoryCache
from .loader import Loader
from .results import FrameResult, SeriesMetadata
from .scheduler import LoadCancelled, Scheduler
from .state import LoadState, NodeKey, NodeState

__all__ = [
    "DiskCache",
    "FrameResult",
    "LoadCancelled",
    "LoadState",
    "Loader",
    "MemoryCache",
    "NodeKey",
    "NodeState",
    "Scheduler",
    "SeriesMetadata",
]
