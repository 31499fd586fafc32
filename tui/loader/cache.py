"""Bounded memory cache (LRU by bytes) and an optional disk cache for series metadata."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DISK_FORMAT = 1


class MemoryCache:
    """Least-recently-used cache bounded by a byte budget (each entry carries its size)."""

    def __init__(self, budget_bytes: int) -> None:
        """A cache holding at most `budget_bytes` (an entry larger than that is not kept)."""
        self.budget = max(0, int(budget_bytes))
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self.size = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> Any | None:
        """The value for `key` (marked most recently used), or None."""
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item[0]

    def peek(self, key: Hashable) -> Any | None:
        """The value for `key` without touching its recency or the counters."""
        item = self._items.get(key)
        return None if item is None else item[0]

    def put(self, key: Hashable, value: Any, size: int) -> bool:
        """Store `value` of `size` bytes, evicting the least recently used; False if too big."""
        self.discard(key)
        size = max(1, int(size))
        if size > self.budget:
            return False
        self._items[key] = (value, size)
        self.size += size
        while self.size > self.budget and self._items:
            old_key, (_, old_size) = self._items.popitem(last=False)
            self.size -= old_size
            self.evictions += 1
            log.debug("cache evicted %s (%d bytes)", old_key, old_size)
        return True

    def discard(self, key: Hashable) -> None:
        """Forget `key` if present."""
        item = self._items.pop(key, None)
        if item is not None:
            self.size -= item[1]

    def keys(self) -> list[Hashable]:
        """Keys, least recently used first."""
        return list(self._items)

    def clear(self) -> None:
        """Forget everything."""
        self._items.clear()
        self.size = 0


def default_disk_dir() -> Path:
    """platformdirs' user cache dir for pacs-tui, "metadata" below it."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("pacs-tui")) / "metadata"


class DiskCache:
    """Series metadata on disk, one JSON file per (server URL, series UID), bounded in bytes.

    Writes are atomic (temporary file in the same directory, then os.replace). A corrupt,
    half-written or foreign file reads as a miss (and is removed), so the caller falls back
    to the network.
    """

    def __init__(
        self, directory: str | os.PathLike[str] | None = None, max_bytes: int = 512 * 2**20
    ) -> None:
        """Cache in `directory` (default: platformdirs user cache) holding at most `max_bytes`."""
        self.directory = Path(directory) if directory else default_disk_dir()
        self.max_bytes = max_bytes

    def path_for(self, server_url: str, series_uid: str) -> Path:
        """The file for one series of one server (a hash: no UID or URL in the file name)."""
        digest = hashlib.sha256(f"{server_url}\n{series_uid}".encode()).hexdigest()
        return self.directory / f"{digest[:40]}.json"

    def get(self, server_url: str, series_uid: str) -> dict[str, Any] | None:
        """The stored entry {"strategy", "instances": [DICOM JSON...]} or None."""
        path = self.path_for(server_url, series_uid)
        try:
            with open(path, encoding="utf-8") as fh:
                entry = json.load(fh)
            if (
                not isinstance(entry, dict)
                or entry.get("format") != DISK_FORMAT
                or entry.get("url") != server_url
                or entry.get("series_uid") != series_uid
                or not isinstance(entry.get("instances"), list)
                or not all(isinstance(i, dict) for i in entry["instances"])
            ):
                raise ValueError("not a metadata entry for this series")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            log.warning("disk cache entry %s unusable (%s); ignoring it", path.name, exc)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recency for pruning
        return entry

    def put(
        self,
        server_url: str,
        series_uid: str,
        strategy: str,
        instances: Iterable[Mapping[str, Any]],
    ) -> None:
        """Store one series' instances atomically; then prune to the byte budget."""
        entry = {
            "format": DISK_FORMAT,
            "url": server_url,
            "series_uid": series_uid,
            "strategy": strategy,
            "instances": [dict(i) for i in instances],
        }
        path = self.path_for(server_url, series_uid)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(entry, fh, separators=(",", ":"))
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            log.warning("disk cache write failed: %s", exc)
            return
        self.prune()

    def prune(self) -> None:
        """Remove the least recently used files until the total is within the budget."""
        try:
            files = [
                (p.stat().st_mtime, p.stat().st_size, p) for p in self.directory.glob("*.json")
            ]
        except OSError:
            return
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files, key=lambda f: f[0]):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size

    def clear(self) -> None:
        """Remove every entry."""
        for path in self.directory.glob("*.json"):
            with contextlib.suppress(OSError):
                path.unlink()
