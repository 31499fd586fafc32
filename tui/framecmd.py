"""`pacs-tui frame`: one frame through the preview's pixel pipeline, at full resolution, as PNG."""

from __future__ import annotations

import argparse
import asyncio
import sys

from tui.config import Settings
from tui.dicomweb.client import DicomWebClient
from tui.dicomweb.errors import AuthRefused, DicomWebError, Unreachable
from tui.dicomweb.requestlog import JsonLinesSink, RequestLog
from tui.imaging.errors import UndecodableFrame
from tui.imaging.frames import full_image
from tui.imaging.pixelformat import PixelFormat
from tui.imaging.window import Window
from tui.loader import Loader


def parse_window(text: str | None) -> Window | None:
    """'40,400' -> Window(40, 400); None stays None. Raises ValueError on bad input."""
    if not text:
        return None
    center, _, width = text.partition(",")
    value = Window(float(center), float(width))
    if value.width < 1:
        raise ValueError("window width must be at least 1")
    return value


def _err(message: str) -> None:
    print(f"pacs-tui frame: {message}", file=sys.stderr)


async def _write(settings: Settings, args: argparse.Namespace, window: Window | None) -> int:
    log = RequestLog()
    sink = JsonLinesSink(settings.request_log) if settings.request_log else None
    if sink is not None:
        log.subscribe(sink)
    async with DicomWebClient(settings.server, log) as client:
        loader = Loader(client, settings)
        try:
            meta = await loader.metadata(args.study, args.series)
            if not meta.has_pixels or not meta.frames:
                _err(f"series has no image: {meta.reason or 'no pixel data'}")
                return 1
            if args.instance is None:
                instance_index = meta.frames[meta.preview_index][0]
            else:
                instance_index = args.instance - 1
            wanted = (instance_index, args.frame)
            if wanted not in meta.frames:
                _err(
                    f"no instance {instance_index + 1} frame {args.frame} in this series "
                    f"({len(meta.instances)} instances)"
                )
                return 2
            result = await loader.frame(args.study, args.series, meta.frames.index(wanted))
        finally:
            await loader.aclose()
        try:
            fmt = PixelFormat.from_dicom_json(result.instance.raw, result.transfer_syntax)
            image = await asyncio.to_thread(
                full_image, result.data, fmt, result.transfer_syntax, window
            )
        except UndecodableFrame as exc:
            _err(f"cannot decode locally ({exc}); writing the server's rendered JPEG instead")
            import io

            from PIL import Image

            jpeg = await client.rendered(
                args.study,
                args.series,
                result.instance.sop_uid,
                result.frame_number,
                window=(window.center, window.width) if window else None,
            )
            image = Image.open(io.BytesIO(jpeg))
            image.load()
    image.save(args.out, format="PNG")
    print(f"{args.out}: {image.width}x{image.height} {image.mode}", file=sys.stderr)
    return 0


def run_frame(settings: Settings, args: argparse.Namespace) -> int:
    """Entry point of `pacs-tui frame`; returns the exit code."""
    try:
        window = parse_window(args.window)
    except ValueError as exc:
        _err(f"--window: expected CENTER,WIDTH ({exc})")
        return 2
    try:
        return asyncio.run(_write(settings, args, window))
    except (Unreachable, AuthRefused) as exc:
        _err(str(exc))
        return 3
    except DicomWebError as exc:
        _err(str(exc))
        return 1
    except OSError as exc:
        _err(f"cannot write {args.out}: {exc.strerror}")
        return 2
