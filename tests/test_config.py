"""Configuration: file, environment and flags; every kind of error; the permissions warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui import cli
from tui.config import DEFAULT_INCLUDEFIELD, ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_example_config_loads_with_documented_defaults() -> None:
    settings, warnings = load_settings(str(ROOT / "config.toml.example"), env={})
    assert warnings == []
    defaults = Settings()
    assert settings.server.url == "http://127.0.0.1:8042/dicom-web"
    assert settings.server.name == "local"
    assert settings.metadata == defaults.metadata == "auto"
    assert settings.prefetch == "none"
    assert settings.includefield == DEFAULT_INCLUDEFIELD
    assert settings.cache_mib == defaults.cache_mib
    assert dict(settings.lane_caps) == dict(defaults.lane_caps)
    assert settings.server.retries == 2 and settings.server.concurrency == 6
    assert settings.server.password is None  # ORTHANC_PASSWORD is not set in env={}


def test_settings_are_immutable(tmp_path: Path) -> None:
    settings, _ = load_settings(None, flags={"url": "http://h/dicom-web"}, env={})
    with pytest.raises(AttributeError):
        settings.metadata = "wado"  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.keymap["quit"] = "x"  # type: ignore[index]


def test_malformed_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[app]\nmetadata = "qido"\nprefetch = \n')
    with pytest.raises(ConfigError, match=r"malformed TOML.*line 3"):
        load_settings(str(path), env={})


def test_unknown_key_suggests_the_nearest(tmp_path: Path) -> None:
    path = write(tmp_path, '[servers.a]\nurl = "http://h"\nconcurrancy = 3\n')
    with pytest.raises(ConfigError, match=r"unknown key 'concurrancy'.*did you mean 'concurrency'"):
        load_settings(str(path), env={})
    path = write(tmp_path, '[app]\nprefech = "none"\n')
    with pytest.raises(ConfigError, match=r"did you mean 'prefetch'"):
        load_settings(str(path), env={})


def test_wrong_type_and_bad_choice(tmp_path: Path) -> None:
    path = write(tmp_path, '[servers.a]\nurl = "http://h"\nretries = "three"\n')
    with pytest.raises(ConfigError, match=r"servers.a.retries: expected an integer, got str"):
        load_settings(str(path), env={})
    path = write(tmp_path, '[servers.a]\nurl = "http://h"\nverify_tls = 1\n')
    with pytest.raises(ConfigError, match=r"verify_tls: expected true or false"):
        load_settings(str(path), env={})
    path = write(tmp_path, '[app]\nmetadata = "fast"\n')
    with pytest.raises(ConfigError, match=r"app.metadata: 'fast' is not one of auto, qido, wado"):
        load_settings(str(path), env={})


def test_missing_url(tmp_path: Path) -> None:
    path = write(tmp_path, '[servers.a]\nuser = "me"\n')
    with pytest.raises(ConfigError, match="no server URL"):
        load_settings(str(path), env={})


def test_missing_file_and_unknown_server(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_settings(str(tmp_path / "nope.toml"), env={})
    path = write(tmp_path, '[servers.main]\nurl = "http://h"\n')
    with pytest.raises(ConfigError, match=r"--server: unknown key 'mian'.*'main'"):
        load_settings(str(path), server="mian", env={})


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[servers.a]\nurl = "http://file/dicom-web"\nuser = "fileuser"\npassword_env = "PW"\n'
        '[servers.b]\ndefault = true\nurl = "http://b/dicom-web"\n',
    )
    s, _ = load_settings(str(path), server="a", env={"PW": "from-env-var"})
    assert (s.server.url, s.server.user, s.server.password) == (
        "http://file/dicom-web",
        "fileuser",
        "from-env-var",
    )
    s, _ = load_settings(str(path), env={})
    assert s.server.name == "b"  # the default server
    env = {
        "PACS_TUI_URL": "http://env/dicom-web",
        "PACS_TUI_USER": "envuser",
        "PACS_TUI_PASSWORD": "envpw",
        "PW": "from-env-var",
    }
    s, _ = load_settings(str(path), server="a", env=env)
    assert (s.server.url, s.server.user, s.server.password) == (
        "http://env/dicom-web",
        "envuser",
        "envpw",
    )
    s, _ = load_settings(
        str(path),
        server="a",
        env=env,
        flags={"url": "http://flag/dicom-web/", "user": "flaguser", "prefetch": "adjacent"},
    )
    assert (s.server.url, s.server.user) == ("http://flag/dicom-web", "flaguser")
    assert s.prefetch == "adjacent"


def test_config_file_from_environment_and_xdg(tmp_path: Path) -> None:
    path = write(tmp_path, '[servers.x]\nurl = "http://viaenv/dicom-web"\n')
    s, _ = load_settings(None, env={"PACS_TUI_CONFIG": str(path)})
    assert s.server.url == "http://viaenv/dicom-web"
    xdg = tmp_path / "xdg"
    (xdg / "pacs-tui").mkdir(parents=True)
    (xdg / "pacs-tui" / "config.toml").write_text('[servers.y]\nurl = "http://xdg/dicom-web"\n')
    s, _ = load_settings(None, env={"XDG_CONFIG_HOME": str(xdg)})
    assert s.server.url == "http://xdg/dicom-web"


def test_password_command_and_token(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[servers.a]\nurl = "http://h"\n'
        r"""password_command = 'printf "s3cret\nignored"'"""
        "\n"
        'token_env = "TOK"\nheaders = { X-Site = "A" }\n',
    )
    s, _ = load_settings(str(path), env={"TOK": "tok123"})
    assert s.server.password == "s3cret"
    assert s.server.token == "tok123"
    assert dict(s.server.headers) == {"X-Site": "A"}
    assert "s3cret" not in repr(s) and "tok123" not in repr(s)
    path = write(tmp_path, '[servers.a]\nurl = "http://h"\npassword_command = "false"\n')
    with pytest.raises(ConfigError, match="password_command exited 1"):
        load_settings(str(path), env={})


def test_password_in_readable_file_warns(tmp_path: Path) -> None:
    text = '[servers.a]\nurl = "http://h"\npassword = "pw"\n'
    _, warnings = load_settings(str(write(tmp_path, text, 0o644)), env={})
    assert len(warnings) == 1 and "chmod 600" in warnings[0]
    assert 'pw"' not in warnings[0]
    _, warnings = load_settings(str(write(tmp_path, text, 0o600)), env={})
    assert warnings == []


def test_cli_reports_config_errors_with_exit_2(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("PACS_TUI_URL", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
    path = write(tmp_path, "[app]\nbogus = 1\n")
    assert cli.main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'bogus'" in err and "Traceback" not in err
    assert cli.main(["browse"]) == 2
    assert "no server URL" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["nosuchcommand"], ["--bogus"], ["triage", "--url", "http://h"]])
def test_cli_usage_errors_exit_2(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_cli_version(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("pacs-tui 0.")
