"""Command line: browse (default), triage, frame, demo. Exit codes per DESIGN.md."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from tui import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
COMMANDS = ("browse", "triage", "frame", "demo")


def _connection(p: argparse.ArgumentParser, metadata: bool = True) -> None:
    g = p.add_argument_group("connection")
    g.add_argument(
        "--config",
        metavar="FILE",
        help="config file (default: $PACS_TUI_CONFIG, then ~/.config/pacs-tui/config.toml)",
    )
    g.add_argument("--server", metavar="NAME", help="a [servers.NAME] entry of the config")
    g.add_argument("--url", metavar="URL", help="DICOMweb root, e.g. http://host:8042/dicom-web")
    g.add_argument("--user", metavar="USER", help="user name (password: $PACS_TUI_PASSWORD)")
    g.add_argument("--request-log", metavar="FILE", help="append every request as JSON lines")
    if metadata:
        g.add_argument("--metadata", choices=("auto", "qido", "wado"), help="metadata strategy")


def _viewing(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("browsing")
    g.add_argument("--image-mode", choices=("auto", "kitty", "sixel", "halfcell", "unicode", "off"))
    g.add_argument("--prefetch", choices=("none", "adjacent", "study"))
    g.add_argument("--patient", metavar="ID", help="open this patient")
    g.add_argument("--study", metavar="UID", help="open this study (its series listed)")
    g.add_argument("--series", metavar="UID", help="open and load this series")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="pacs-tui",
        description="Browse a PACS over DICOMweb from the terminal and see what loads slowly.",
        epilog="Commands: browse (default), triage, frame, demo. "
        "'pacs-tui COMMAND --help' for each.",
    )
    parser.add_argument("--version", action="version", version=f"pacs-tui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    browse = sub.add_parser("browse", help="browse patients, studies and series (default)")
    _connection(browse)
    _viewing(browse)

    triage = sub.add_parser("triage", help="headless report of what loads slowly")
    _connection(triage, metadata=False)
    scope = triage.add_mutually_exclusive_group(required=True)
    scope.add_argument("--patient", metavar="ID")
    scope.add_argument("--study", metavar="UID")
    triage.add_argument(
        "--metadata",
        dest="triage_metadata",
        choices=("qido", "wado", "both"),
        help="strategy to time (default: the configured one)",
    )
    triage.add_argument(
        "--frames", type=int, default=1, metavar="N", help="frames to time per series (default 1)"
    )
    triage.add_argument("--format", choices=("table", "json", "csv"), default="table")
    triage.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="series measured at once (default 1, so timings do not disturb each other)",
    )
    triage.add_argument(
        "--slow-ms",
        type=float,
        metavar="MS",
        help="call a series slow above this (default: 3x the median)",
    )

    frame = sub.add_parser("frame", help="write one frame as PNG through the preview pipeline")
    _connection(frame)
    frame.add_argument("--study", metavar="UID", required=True)
    frame.add_argument("--series", metavar="UID", required=True)
    frame.add_argument(
        "--instance",
        type=int,
        default=None,
        metavar="N",
        help="instance index in slice order, 1-based (default: middle)",
    )
    frame.add_argument("--frame", type=int, default=1, metavar="N", help="frame number, 1-based")
    frame.add_argument("--window", metavar="CENTER,WIDTH", help="VOI window (default: the file's)")
    frame.add_argument("--out", metavar="FILE.png", required=True)

    demo = sub.add_parser("demo", help="start a private Orthanc with sample data and browse it")
    demo.add_argument("--request-log", metavar="FILE")
    demo.add_argument("--metadata", choices=("auto", "qido", "wado"))
    _viewing(demo)
    return parser


def _normalise(argv: list[str]) -> list[str]:
    if not argv:
        return ["browse"]
    first = argv[0]
    if first in COMMANDS or first in ("-h", "--help", "--version"):
        return argv
    if not first.startswith("-"):
        return argv  # let argparse reject the unknown command with a usage line
    return ["browse", *argv]


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    names = (
        "url",
        "user",
        "request_log",
        "metadata",
        "image_mode",
        "prefetch",
        "patient",
        "study",
        "series",
        "concurrency",
    )
    return {n: getattr(args, n, None) for n in names}


def _err(message: str) -> None:
    print(f"pacs-tui: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(_normalise(list(sys.argv[1:] if argv is None else argv)))
    from tui.config import ConfigError, load_settings

    try:
        if args.command == "demo":
            return _demo(args)
        settings, warnings = load_settings(
            getattr(args, "config", None), getattr(args, "server", None), _flags(args)
        )
    except ConfigError as exc:
        _err(str(exc))
        return EXIT_USAGE
    for warning in warnings:
        _err(f"warning: {warning}")
    if args.command == "triage":
        from tui.triage import run_triage

        return run_triage(settings, args)
    if args.command == "frame":
        from tui.framecmd import run_frame

        return run_frame(settings, args)
    from tui.app import run

    return run(settings)


def _demo(args: argparse.Namespace) -> int:
    import time

    from tui.config import load_settings
    from tui.orthanc import OrthancNotInstalled, OrthancStartError, start_demo_orthanc

    started = time.monotonic()
    print("pacs-tui demo: starting a private Orthanc with sample data...", file=sys.stderr)
    try:
        orthanc = start_demo_orthanc()
    except OrthancNotInstalled as exc:
        _err(str(exc))
        return EXIT_UNREACHABLE
    except OrthancStartError as exc:
        _err(f"the demo Orthanc did not start: {exc}")
        return EXIT_UNREACHABLE
    with orthanc:
        print(
            f"pacs-tui demo: Orthanc ready at {orthanc.dicomweb_url} "
            f"in {time.monotonic() - started:.1f} s",
            file=sys.stderr,
        )
        flags = _flags(args) | {"url": orthanc.dicomweb_url, "user": orthanc.user}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PACS_TUI_")}
        env["PACS_TUI_PASSWORD"] = orthanc.password
        settings, _ = load_settings(None, None, flags, env=env, require_url=True)
        from tui.app import run

        try:
            return run(settings)
        finally:
            print("pacs-tui demo: stopping the demo Orthanc...", file=sys.stderr)
