"""The Textual application (the only package that imports textual / textual_image).

`run(settings)` is the entry point used by `tui.cli`; `PacsApp` is importable for tests.
Heavy imports happen inside the functions so that `import tui.app` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui.config import Settings

__all__ = ["run", "PacsApp"]


def run(settings: Settings, *, log: Any = None) -> int:
    """Run the browser until the user quits; returns the exit code.

    `log` is an optional RequestLog (the caller may have attached sinks to it).
    """
    from tui.app.imagemode import image_class_for

    # Probe the terminal (if asked to) before Textual takes over stdin.
    image_class, image_mode = image_class_for(settings.image_mode)
    from tui.app.app import PacsApp

    app = PacsApp(settings, request_log=log, image_class=image_class, image_mode=image_mode)
    result = app.run()
    if app.return_code not in (None, 0):
        return int(app.return_code or 0)
    return int(result) if isinstance(result, int) else 0


def __getattr__(name: str) -> Any:
    if name == "PacsApp":
        from tui.app.app import PacsApp

        return PacsApp
    raise AttributeError(name)
