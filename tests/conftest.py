"""Shared fixtures: one private Orthanc per test session, loaded with the sample set.

Other helpers: add fixtures in your own conftest files (e.g. tests/<area>/conftest.py), or ask
the lead to extend this one. Tests that use `orthanc` are skipped when Orthanc is missing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.latency_proxy import LatencyProxy
from tui import sample
from tui.config import ServerSettings
from tui.orthanc import OrthancNotInstalled, PrivateOrthanc, UploadResult


@dataclass(frozen=True)
class SampleSet:
    """Generated files: `main` (valid set), `hostile` (markup/escape patient), and timings."""

    root: Path
    main: list[Path]
    hostile: list[Path]
    seconds: float

    @property
    def all(self) -> list[Path]:
        """Main and hostile files together (what the `orthanc` fixture uploads)."""
        return self.main + self.hostile


@pytest.fixture(scope="session")
def sample_set(tmp_path_factory: pytest.TempPathFactory) -> SampleSet:
    """The sample set generated once per session."""
    root = tmp_path_factory.mktemp("sample")
    t0 = time.perf_counter()
    main = sample.generate(root / "main")
    hostile = sample.generate_hostile(root / "hostile")
    return SampleSet(root, main, hostile, time.perf_counter() - t0)


@pytest.fixture(scope="session")
def sample_dir(sample_set: SampleSet) -> Path:
    """Folder with the generated main set (layout: see tui.sample)."""
    return sample_set.root / "main"


@pytest.fixture(scope="session")
def sample_files(sample_set: SampleSet) -> list[Path]:
    """Paths of the generated main set."""
    return sample_set.main


@pytest.fixture(scope="session")
def orthanc_upload(orthanc: PrivateOrthanc) -> UploadResult:
    """What the session upload did (counts and seconds)."""
    assert orthanc.last_upload is not None
    return orthanc.last_upload


@pytest.fixture(scope="session")
def orthanc(sample_set: SampleSet) -> Iterator[PrivateOrthanc]:
    """A private Orthanc with the main and hostile sample sets uploaded; stopped at the end."""
    try:
        server = PrivateOrthanc(name="pacs-tui tests")
    except OrthancNotInstalled as exc:
        pytest.skip(str(exc))
    with server:
        server.upload(sample_set.all)
        yield server


@pytest.fixture
def server_settings(orthanc: PrivateOrthanc) -> ServerSettings:
    """ServerSettings pointing at the session Orthanc's DICOMweb root, with credentials."""
    return ServerSettings(
        name="test-orthanc",
        url=orthanc.dicomweb_url,
        user=orthanc.user,
        password=orthanc.password,
    )


@pytest.fixture
async def proxy(orthanc: PrivateOrthanc) -> AsyncIterator[LatencyProxy]:
    """A latency proxy in front of the session Orthanc (no rules until a test adds some)."""
    p = await LatencyProxy(orthanc.rest_url, max_lifetime=120.0).start()
    yield p
    await asyncio.wait_for(p.stop(), 10)
