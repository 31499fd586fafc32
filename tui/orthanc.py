"""A private Orthanc (with the DICOMweb plugin) on loopback, for tests and the demo.

`PrivateOrthanc` writes its own configuration into a temporary directory, starts Orthanc as a
child process in its own session (so Ctrl-C in a terminal app does not reach it directly),
waits until it answers, can upload DICOM files, and stops exactly that process on exit
(context exit, `stop()`, atexit, SIGTERM/SIGHUP).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import httpx

DEFAULT_BINARY = "/usr/sbin/Orthanc"
DEFAULT_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
INSTALL_HINT = "apt-get install -y orthanc orthanc-dicomweb"


UPLOAD_ATTEMPTS = 3


class OrthancNotInstalled(Exception):
    """Orthanc or its DICOMweb plugin is missing; the message says how to install them."""


class OrthancStartError(RuntimeError):
    """Orthanc did not come up; the message carries the tail of its log."""


@dataclass(frozen=True)
class UploadResult:
    """What an upload did."""

    files: int
    stored: int
    already_stored: int
    seconds: float


def find_binary(binary: str | None = None) -> str:
    """Path of the Orthanc executable, or raise `OrthancNotInstalled`."""
    if binary is not None:
        if os.access(binary, os.X_OK):
            return binary
        found = shutil.which(binary)
    else:
        found = shutil.which("Orthanc") or (
            DEFAULT_BINARY if os.access(DEFAULT_BINARY, os.X_OK) else None
        )
    if not found:
        raise OrthancNotInstalled(
            f"Orthanc is not installed (no {binary or 'Orthanc'} executable found). "
            f"Install it with: {INSTALL_HINT}"
        )
    return found


def find_plugin(plugin: str | None = None) -> str:
    """Path of the DICOMweb plugin, or raise `OrthancNotInstalled`."""
    path = plugin or DEFAULT_PLUGIN
    if not Path(path).is_file():
        raise OrthancNotInstalled(
            f"The Orthanc DICOMweb plugin is not installed ({path} is missing). "
            f"Install it with: {INSTALL_HINT}"
        )
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Every running instance, so that atexit and signal handlers can stop them.
_LIVE: weakref.WeakSet[PrivateOrthanc] = weakref.WeakSet()
_HANDLERS_INSTALLED = False
_HANDLER_LOCK = threading.Lock()


_IN_HANDLER = False


def _stop_all() -> None:
    for inst in list(_LIVE):
        with contextlib.suppress(Exception):
            inst.stop()


def _install_handlers() -> None:
    """atexit always; SIGTERM/SIGHUP handlers (chained) when on the main thread."""
    global _HANDLERS_INSTALLED
    with _HANDLER_LOCK:
        if _HANDLERS_INSTALLED:
            return
        _HANDLERS_INSTALLED = True
        atexit.register(_stop_all)
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:
                previous = signal.getsignal(sig)
            except (ValueError, OSError):
                continue

            def handler(signum: int, frame: FrameType | None, _prev: Any = previous) -> None:
                global _IN_HANDLER
                if _IN_HANDLER:  # a second signal while we stop: let the first one finish
                    return
                _IN_HANDLER = True
                _stop_all()
                if callable(_prev):
                    _prev(signum, frame)
                elif _prev == signal.SIG_IGN:
                    return
                else:
                    signal.signal(signum, signal.SIG_DFL)
                    os.kill(os.getpid(), signum)

            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, handler)


class PrivateOrthanc:
    """An Orthanc process of our own on 127.0.0.1 with basic auth and DICOMweb.

    Use as a context manager (or call `start()` / `stop()`):

        with PrivateOrthanc() as orthanc:
            orthanc.upload(paths)
            ... orthanc.dicomweb_url, orthanc.user, orthanc.password ...
    """

    def __init__(
        self,
        *,
        binary: str | None = None,
        plugin: str | None = None,
        name: str = "pacs-tui private Orthanc",
        user: str = "pacs",
        start_timeout: float = 15.0,
        stop_timeout: float = 10.0,
        workdir: Path | None = None,
    ) -> None:
        """Check the installation (raises `OrthancNotInstalled`); nothing starts yet."""
        self.binary = find_binary(binary)
        self.plugin = find_plugin(plugin)
        self.name = name
        self.user = user
        self.password = secrets.token_urlsafe(18)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._parent_workdir = workdir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.workdir: Path | None = None
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.start_seconds: float | None = None
        self.last_upload: UploadResult | None = None
        self._lock = threading.Lock()

    # -- properties --------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """Process id of the running Orthanc, or None."""
        return self.process.pid if self.process is not None else None

    @property
    def rest_url(self) -> str:
        """Orthanc REST root, e.g. http://127.0.0.1:PORT."""
        if self.port is None:
            raise RuntimeError("Orthanc is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb_url(self) -> str:
        """DICOMweb root (no trailing slash)."""
        return self.rest_url + "/dicom-web"

    @property
    def url(self) -> str:
        """Alias of `dicomweb_url`."""
        return self.dicomweb_url

    @property
    def auth(self) -> tuple[str, str]:
        """(user, password) for basic auth."""
        return (self.user, self.password)

    @property
    def log_path(self) -> Path | None:
        """Orthanc's stdout/stderr log file."""
        return self.workdir / "orthanc.log" if self.workdir else None

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self.process is not None and self.process.poll() is None

    # -- lifecycle ---------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The Orthanc JSON configuration used for this instance."""
        assert self.workdir is not None and self.port is not None
        return {
            "Name": self.name,
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "index"),
            "HttpServerEnabled": True,
            "HttpPort": self.port,
            "RemoteAccessAllowed": False,
            "SslEnabled": False,
            "DicomServerEnabled": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {self.user: self.password},
            "Plugins": [self.plugin],
            "StorageCompression": False,
            # QIDO answers are rebuilt from the index through DefaultEncoding (Latin1 by
            # default), which turns CJK/Greek names into "^". UTF-8 keeps them.
            "DefaultEncoding": "Utf8",
            "ConcurrentJobs": 2,
            "DicomWeb": {
                "Enable": True,
                "Root": "/dicom-web/",
                "EnableWado": True,
                "Ssl": False,
                "StudiesMetadata": "Full",
                "SeriesMetadata": "Full",
            },
        }

    def start(self) -> PrivateOrthanc:
        """Write the config, launch Orthanc and wait until `GET /system` answers."""
        if self.running:
            return self
        _install_handlers()
        self._tmp = tempfile.TemporaryDirectory(
            prefix="pacs-tui-orthanc-", dir=self._parent_workdir
        )
        self.workdir = Path(self._tmp.name)
        last_error: Exception | None = None
        for _attempt in range(3):  # a free port can be taken between probe and bind
            try:
                self._launch()
                return self
            except OrthancStartError as exc:
                last_error = exc
                self._kill()
                if "port" not in str(exc).lower():
                    break
        self._cleanup()
        assert last_error is not None
        raise last_error

    def _launch(self) -> None:
        assert self.workdir is not None
        self.port = _free_port()
        config_path = self.workdir / "config.json"
        config_path.write_text(json.dumps(self.config(), indent=2), encoding="utf-8")
        log_path = self.workdir / "orthanc.log"
        t0 = time.perf_counter()
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, str(config_path)],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _LIVE.add(self)
        deadline = time.monotonic() + self.start_timeout
        with httpx.Client(auth=self.auth, timeout=2.0) as client:
            while True:
                if self.process.poll() is not None:
                    raise OrthancStartError(
                        f"Orthanc exited with code {self.process.returncode} while starting:\n"
                        + self._log_tail()
                    )
                try:
                    r = client.get(self.rest_url + "/system")
                    if r.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise OrthancStartError(
                        f"Orthanc did not answer within {self.start_timeout:.0f} s:\n"
                        + self._log_tail()
                    )
                time.sleep(0.02)
        self.start_seconds = time.perf_counter() - t0

    def _log_tail(self, lines: int = 25) -> str:
        path = self.log_path
        if path is None or not path.exists():
            return "(no log)"
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def _kill(self) -> None:
        proc = self.process
        if proc is None:
            return
        with self._lock:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    proc.wait(timeout=5)
            else:
                proc.wait()
        _LIVE.discard(self)

    def _cleanup(self) -> None:
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()
            self._tmp = None

    def stop(self) -> None:
        """Stop exactly our Orthanc (SIGTERM, then SIGKILL after `stop_timeout`), remove its
        temporary directory. Safe to call more than once."""
        self._kill()
        self._cleanup()

    def __enter__(self) -> PrivateOrthanc:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- data --------------------------------------------------------------------------------

    def client(self, **kwargs: Any) -> httpx.Client:
        """A blocking httpx client on the REST root with our credentials."""
        return httpx.Client(base_url=self.rest_url, auth=self.auth, **kwargs)

    def upload(self, paths: Iterable[Path], *, concurrency: int = 6) -> UploadResult:
        """POST every file to /instances, `concurrency` at a time; raise on any failure."""
        files = list(paths)
        t0 = time.perf_counter()
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        with self.client(timeout=60.0, limits=limits) as client:

            def post(path: Path) -> str:
                body = Path(path).read_bytes()
                for attempt in range(UPLOAD_ATTEMPTS):
                    r = client.post(
                        "/instances", content=body, headers={"Content-Type": "application/dicom"}
                    )
                    # Orthanc 1.10 races when two uploads create the same storage directory at
                    # once ("Unable to create a subdirectory or a file in the file storage",
                    # HTTP 500, seen in about one test session in 20); the same file then succeeds.
                    if r.status_code != 500 or attempt == UPLOAD_ATTEMPTS - 1:
                        break
                    time.sleep(0.05 * (attempt + 1))
                if r.status_code != 200:
                    raise RuntimeError(
                        f"upload of {path} failed: HTTP {r.status_code} {r.text[:200]}"
                    )
                return str(r.json().get("Status", ""))

            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                statuses = list(pool.map(post, files))
        self.last_upload = UploadResult(
            files=len(files),
            stored=sum(1 for s in statuses if s == "Success"),
            already_stored=sum(1 for s in statuses if s == "AlreadyStored"),
            seconds=time.perf_counter() - t0,
        )
        return self.last_upload

    def statistics(self) -> dict[str, Any]:
        """Orthanc's GET /statistics."""
        with self.client(timeout=10.0) as client:
            r = client.get("/statistics")
            r.raise_for_status()
            result: dict[str, Any] = r.json()
            return result


def demo_cache_dir() -> Path:
    """Where the demo keeps its generated sample files."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("pacs-tui")) / "sample"


def demo_sample_files(cache_dir: Path | None = None, *, hostile: bool = True) -> list[Path]:
    """Generated sample files in `cache_dir`, regenerated only when the version stamp differs."""
    from tui import sample

    root = Path(cache_dir) if cache_dir is not None else demo_cache_dir()
    stamp = root / "VERSION"
    want = f"{sample.SAMPLE_VERSION}\n"
    main_dir, hostile_dir = root / "main", root / "hostile"
    if not stamp.exists() or stamp.read_text() != want:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
        sample.generate(main_dir)
        sample.generate_hostile(hostile_dir)
        stamp.write_text(want)
    files = sorted(main_dir.rglob("*.dcm"))
    if hostile:
        files += sorted(hostile_dir.rglob("*.dcm"))
    return files


def start_demo_orthanc(cache_dir: Path | None = None, *, hostile: bool = True) -> PrivateOrthanc:
    """Start a PrivateOrthanc loaded with the sample set; the caller must `stop()` it
    (or use it as a context manager). Raises `OrthancNotInstalled` when Orthanc is missing."""
    orthanc = PrivateOrthanc(name="pacs-tui demo")
    files = demo_sample_files(cache_dir, hostile=hostile)
    orthanc.start()
    try:
        orthanc.upload(files)
    except BaseException:
        orthanc.stop()
        raise
    return orthanc
