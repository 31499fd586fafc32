"""A crash inside the app must not print credentials: Textual's default crash report lists
every frame's local variables, and a local may hold the password."""

from __future__ import annotations

import dataclasses

import pytest

from tests.test_app_snapshots import make_app

SECRET = "hunter2-do-not-print"


async def test_crash_report_has_no_locals_and_no_password(capfd) -> None:
    app = make_app()
    app.settings = dataclasses.replace(
        app.settings, server=dataclasses.replace(app.settings.server, password=SECRET)
    )

    def boom() -> None:
        password = app.settings.server.password  # a local that Textual would have printed
        raise RuntimeError(f"simulated failure ({len(password or '')} chars)")

    with pytest.raises(RuntimeError, match="simulated failure"):
        async with app.run_test() as pilot:
            app.call_later(boom)
            await pilot.pause(0.2)
    report = "".join(capfd.readouterr())
    assert "simulated failure" in report  # the crash is reported ...
    assert SECRET not in report  # ... without the password held in a local
