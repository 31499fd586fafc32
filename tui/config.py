"""Settings: config.toml + environment + flags -> one immutable Settings object."""

from __future__ import annotations

import difflib
import os
import shlex
import stat
import subprocess
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DEFAULT_INCLUDEFIELD: tuple[str, ...] = (
    "Rows",
    "Columns",
    "ImageType",
    "SOPClassUID",
    "InstanceNumber",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PhotometricInterpretation",
    "SamplesPerPixel",
    "PlanarConfiguration",
    "RescaleSlope",
    "RescaleIntercept",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "NumberOfFrames",
    "SpecificCharacterSet",
    "FrameOfReferenceUID",
)


def _frozen(mapping: Mapping[str, object] | None = None) -> Mapping[str, object]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class ServerSettings:
    """One DICOMweb server: where it is, how to authenticate, how hard to push it."""

    name: str = "default"
    url: str = ""
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    verify_tls: bool = True
    ca_file: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retries: int = 2
    concurrency: int = 6


@dataclass(frozen=True)
class Settings:
    """Everything the app, the loader and triage need, resolved once."""

    server: ServerSettings = field(default_factory=ServerSettings)
    metadata: str = "auto"
    includefield: tuple[str, ...] = DEFAULT_INCLUDEFIELD
    prefetch: str = "none"
    image_mode: str = "auto"
    cache_mib: int = 256
    disk_cache: bool = False
    disk_cache_dir: str | None = None
    request_log: str | None = None
    keymap: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    patient: str | None = None
    study: str | None = None
    series: str | None = None
    dwell_ms: int = 150
    lane_caps: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({"selected": 4, "list": 2, "prefetch": 1})
    )


CHOICES: dict[str, tuple[str, ...]] = {
    "metadata": ("auto", "qido", "wado"),
    "prefetch": ("none", "adjacent", "study"),
    "image_mode": ("auto", "kitty", "sixel", "halfcell", "unicode", "off"),
}


class ConfigError(Exception):
    """A configuration problem the user must fix; the CLI prints it and exits 2."""


# key -> (type, doc). Types are checked strictly (bool is not an int here).
SERVER_KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "default": (bool, "use this server when --server is not given"),
    "url": (str, "DICOMweb root URL, e.g. http://127.0.0.1:8042/dicom-web"),
    "user": (str, "user name for HTTP basic authentication"),
    "password": (str, "password in clear (discouraged: prefer password_env or password_command)"),
    "password_env": (str, "name of an environment variable that holds the password"),
    "password_command": (str, "command whose first output line is the password"),
    "token_env": (str, "name of an environment variable that holds a bearer token"),
    "headers": (dict, "extra HTTP headers sent with every request"),
    "verify_tls": (bool, "verify the server's TLS certificate"),
    "ca_file": (str, "CA bundle used to verify the server's certificate"),
    "connect_timeout": ((int, float), "seconds to wait for a connection"),
    "read_timeout": ((int, float), "seconds to wait for data on a connection"),
    "retries": (int, "extra attempts for idempotent requests that fail transiently"),
    "concurrency": (int, "most requests in flight to this server at once"),
}
APP_KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "metadata": (str, "series metadata strategy: auto, qido or wado"),
    "includefield": (list, "tags asked for in QIDO-RS /instances (keywords)"),
    "prefetch": (str, "what to load unasked: none, adjacent or study"),
    "image_mode": (str, "preview graphics: auto, kitty, sixel, halfcell, unicode or off"),
    "cache_mib": (int, "memory budget for cached metadata and frames, MiB"),
    "disk_cache": (bool, "keep series metadata on disk between runs"),
    "disk_cache_dir": (str, "where the disk cache lives (default: the user cache dir)"),
    "request_log": (str, "append every request as a JSON line to this file"),
    "dwell_ms": (int, "how long the cursor rests on a series before it loads"),
    "lanes": (dict, "per-lane concurrency caps: selected, list, prefetch"),
}
SECRET_KEYS = frozenset({"password", "headers"})
TOP_KEYS = ("app", "servers", "keys")
LANES = ("selected", "list", "prefetch")


def default_config_path(env: Mapping[str, str]) -> Path:
    """The config file used when neither --config nor $PACS_TUI_CONFIG is given."""
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "pacs-tui" / "config.toml"


def _unknown(key: str, valid: Any, where: str) -> ConfigError:
    near = difflib.get_close_matches(key, list(valid), n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else f" (valid: {', '.join(valid)})"
    return ConfigError(f"{where}: unknown key '{key}'{hint}")


def _typename(t: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        bool: "true or false",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "a table",
    }
    if isinstance(t, tuple):
        return "a number"
    return names.get(t, t.__name__)


def _check(table: Mapping[str, Any], spec: Mapping[str, tuple[Any, str]], where: str) -> None:
    for key, value in table.items():
        if key not in spec:
            raise _unknown(key, spec, where)
        expected = spec[key][0]
        ok = isinstance(value, expected) and not (
            isinstance(value, bool) and expected in (int, (int, float))
        )
        if not ok:
            got = "a table" if isinstance(value, dict) else type(value).__name__
            # A mistyped password (password = 12345) must not be echoed in the error.
            shown = "" if isinstance(value, dict) or key in SECRET_KEYS else f" ({value!r})"
            raise ConfigError(f"{where}.{key}: expected {_typename(expected)}, got {got}{shown}")


def read_config_file(path: Path) -> tuple[dict[str, Any], list[str]]:
    """Parse and validate a config file; return its tables and any warnings."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None
    for key in data:
        if key not in TOP_KEYS:
            raise _unknown(key, TOP_KEYS, str(path))
    warnings: list[str] = []
    app = data.get("app", {})
    if not isinstance(app, dict):
        raise ConfigError(f"{path}: [app] must be a table")
    _check(app, APP_KEYS, "app")
    for name in ("metadata", "prefetch", "image_mode"):
        if name in app and app[name] not in CHOICES[name]:
            raise ConfigError(f"app.{name}: '{app[name]}' is not one of {', '.join(CHOICES[name])}")
    for key, value in app.get("lanes", {}).items():
        if key not in LANES:
            raise _unknown(key, LANES, "app.lanes")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"app.lanes.{key}: expected a positive integer, got {value!r}")
    if any(not isinstance(v, str) for v in app.get("includefield", [])):
        raise ConfigError("app.includefield: expected a list of strings")
    keys = data.get("keys", {})
    if not isinstance(keys, dict) or any(not isinstance(v, str) for v in keys.values()):
        raise ConfigError('keys: expected a table of binding id = "key,key" strings')
    servers = data.get("servers", {})
    if not isinstance(servers, dict):
        raise ConfigError(f"{path}: [servers] must be a table of [servers.NAME] tables")
    defaults = []
    for name, table in servers.items():
        if not isinstance(table, dict):
            raise ConfigError(f"servers.{name}: must be a table")
        _check(table, SERVER_KEYS, f"servers.{name}")
        if table.get("default"):
            defaults.append(name)
        if "password" in table:
            mode = path.stat().st_mode
            if mode & (stat.S_IRGRP | stat.S_IROTH):
                warnings.append(
                    f"{path} holds a password and is readable by group or others; "
                    f"run: chmod 600 {path}"
                )
    if len(defaults) > 1:
        raise ConfigError(f"servers: more than one default ({', '.join(defaults)})")
    return data, warnings


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(url without userinfo and trailing slash, user, password) from a URL."""
    parts = urlsplit(url.strip())
    user = password = None
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, sep, pw = userinfo.partition(":")
        password = pw if sep else None
    clean = urlunsplit(parts._replace(netloc=netloc)).rstrip("/")
    return clean, user or None, password


def _password_from_command(command: str, where: str) -> str:
    try:
        done = subprocess.run(
            shlex.split(command), capture_output=True, text=True, timeout=15, check=False
        )
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"{where}.password_command failed: {type(exc).__name__}") from None
    if done.returncode != 0:
        raise ConfigError(f"{where}.password_command exited {done.returncode}")
    lines = done.stdout.splitlines()
    if not lines or not lines[0]:
        raise ConfigError(f"{where}.password_command printed nothing")
    return lines[0]


def load_settings(
    config: str | None = None,
    server: str | None = None,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    require_url: bool = True,
) -> tuple[Settings, list[str]]:
    """Resolve file, environment and flags (in rising precedence) into one Settings.

    Returns the settings and a list of warnings for the user. Raises ConfigError.
    """
    env = os.environ if env is None else env
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    path: Path | None
    if config:
        path = Path(config)
    elif env.get("PACS_TUI_CONFIG"):
        path = Path(env["PACS_TUI_CONFIG"])
    else:
        path = default_config_path(env)
        if not path.exists():
            path = None
    data: dict[str, Any] = {}
    warnings: list[str] = []
    if path is not None:
        data, warnings = read_config_file(path)
    servers: dict[str, dict[str, Any]] = data.get("servers", {})
    if server is not None:
        if server not in servers:
            raise _unknown(server, list(servers) or ["(no servers configured)"], "--server")
        name = server
    else:
        name = next((n for n, t in servers.items() if t.get("default")), None) or next(
            iter(servers), "default"
        )
    table = dict(servers.get(name, {}))
    where = f"servers.{name}"

    password: str | None = table.get("password")
    if table.get("password_env"):
        password = env.get(table["password_env"]) or password
    if table.get("password_command") and password is None:
        password = _password_from_command(table["password_command"], where)
    token = env.get(table["token_env"]) if table.get("token_env") else None

    url = flags.get("url") or env.get("PACS_TUI_URL") or table.get("url") or ""
    user = flags.get("user") or env.get("PACS_TUI_USER") or table.get("user")
    password = env.get("PACS_TUI_PASSWORD") or password
    if require_url and not url:
        raise ConfigError(
            "no server URL: pass --url, set PACS_TUI_URL, or add [servers.NAME] url = ... "
            f"to {path or default_config_path(env)}"
        )
    # user:password@ in the URL: lowest precedence, and kept out of Settings.url (which is
    # shown, logged, put in error messages and used as a cache key).
    url, url_user, url_password = split_credentials(url) if url else ("", None, None)
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}.url: '{url}' must start with http:// or https://")
    user = user or url_user
    password = password if password is not None else url_password
    for key in ("retries", "concurrency"):
        if key in table and table[key] < (0 if key == "retries" else 1):
            raise ConfigError(f"{where}.{key}: must be at least {0 if key == 'retries' else 1}")
    server_settings = ServerSettings(
        name=name,
        url=url,
        user=user,
        password=password,
        token=token,
        headers=MappingProxyType({str(k): str(v) for k, v in table.get("headers", {}).items()}),
        verify_tls=table.get("verify_tls", True),
        ca_file=table.get("ca_file") or None,
        connect_timeout=float(table.get("connect_timeout", 5.0)),
        read_timeout=float(table.get("read_timeout", 30.0)),
        retries=table.get("retries", 2),
        concurrency=flags.get("concurrency") or table.get("concurrency", 6),
    )
    app = dict(data.get("app", {}))
    for name_ in ("metadata", "prefetch", "image_mode", "request_log"):
        if name_ in flags:
            app[name_] = flags[name_]
    lanes = {"selected": 4, "list": 2, "prefetch": 1} | app.get("lanes", {})
    settings = Settings(
        server=server_settings,
        metadata=app.get("metadata", "auto"),
        includefield=tuple(app.get("includefield", DEFAULT_INCLUDEFIELD)),
        prefetch=app.get("prefetch", "none"),
        image_mode=app.get("image_mode", "auto"),
        cache_mib=app.get("cache_mib", 256),
        disk_cache=app.get("disk_cache", False),
        disk_cache_dir=app.get("disk_cache_dir") or None,
        request_log=app.get("request_log") or None,
        keymap=MappingProxyType(dict(data.get("keys", {}))),
        patient=flags.get("patient"),
        study=flags.get("study"),
        series=flags.get("series"),
        dwell_ms=app.get("dwell_ms", 150),
        lane_caps=MappingProxyType(lanes),
    )
    return settings, warnings
