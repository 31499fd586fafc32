"""PacsApp: wires the loader, the client and the request log to the views."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from textual.app import App
from textual.binding import Binding
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from tui.app.base import PacsScreen
from tui.app.messages import NodeChanged, RequestsChanged, ServerInfoReady
from tui.app.widgets import ChromeHeader
from tui.config import Settings
from tui.text import clean

log = logging.getLogger(__name__)


class PacsApp(App):
    """The terminal PACS browser."""

    CSS_PATH = "pacs.tcss"
    TITLE = "pacs-tui"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("colon", "command", "Command", id="command", show=False),
        Binding("R", "requests", "Requests", id="requests"),
        Binding("f", "search", "Search", id="search"),
    ]

    def _fatal_error(self) -> None:
        """Show a crash without local variables: they may hold credentials (Textual's default
        traceback lists every frame's locals)."""
        from rich.segment import Segments
        from rich.traceback import Traceback

        self.bell()
        traceback = Traceback(show_locals=False, width=None)
        self._exit_renderables.append(
            Segments(self.console.render(traceback, self.console.options))
        )
        self._close_messages_no_wait()

    def __init__(
        self,
        settings: Settings,
        *,
        client: Any = None,
        loader: Any = None,
        request_log: Any = None,
        image_class: type | None | str = "default",
        image_mode: str | None = None,
        clock: Callable[[], float] | None = None,
        page_size: int = 50,
        server_info: str | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.client = client
        self.loader = loader
        self.request_log = request_log
        self._own_client = client is None
        self._own_loader = loader is None
        if image_class == "default":
            from tui.app.imagemode import image_class_for

            image_class, image_mode = image_class_for(
                "halfcell" if settings.image_mode == "auto" else settings.image_mode
            )
        self.image_class: type | None = image_class  # type: ignore[assignment]
        self.image_mode = image_mode or getattr(image_class, "__name__", "off")
        self.clock = clock or time.monotonic
        self.page_size = page_size
        self.server_text = server_info or ""
        self._busy: set[tuple[str, ...]] = set()
        self._ticker: Timer | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._sink: Any = None
        if settings.keymap:
            self.set_keymap(dict(settings.keymap))

    # -- life cycle ----------------------------------------------------------------------------
    async def on_mount(self) -> None:
        if self.request_log is None:
            from tui.dicomweb.requestlog import JsonLinesSink, RequestLog

            self.request_log = RequestLog()
            if self.settings.request_log:
                self._sink = JsonLinesSink(self.settings.request_log)
                self._unsubscribe.append(self.request_log.subscribe(self._sink))
        if self.client is None:
            from tui.dicomweb.client import DicomWebClient

            self.client = DicomWebClient(self.settings.server, self.request_log)
        if self.loader is None:
            from tui.loader import Loader

            self.loader = Loader(self.client, self.settings, log=self.request_log)
        self._unsubscribe.append(self.loader.subscribe(self._on_node))
        self._unsubscribe.append(self.request_log.subscribe(self._on_request))
        started = getattr(self.request_log, "subscribe_started", None)
        if started is not None:
            self._unsubscribe.append(started(self._on_request))
        self._ticker = self.set_interval(0.2, self._tick, pause=True)
        from tui.app.browse import BrowseScreen

        await self.push_screen(BrowseScreen())
        if not self.server_text:
            self.run_worker(self._fetch_server_info(), group="server-info", exit_on_error=False)

    async def _fetch_server_info(self) -> None:
        try:
            info = await self.client.server_info()
            text = getattr(info, "label", None) or f"{info.product} {info.version}"
        except Exception as exc:  # shown in the header, nothing else breaks
            text = f"server: {getattr(exc, 'message', exc)}"
        self.post_message(ServerInfoReady(text))

    async def action_quit(self) -> None:
        await self.shutdown()
        self.exit(0)

    async def shutdown(self) -> None:
        """Unsubscribe and close what this app created."""
        for unsubscribe in self._unsubscribe:
            with contextlib.suppress(Exception):
                unsubscribe()
        self._unsubscribe.clear()
        try:
            if self._own_loader and self.loader is not None:
                await self.loader.aclose()
            if self._own_client and self.client is not None:
                await self.client.aclose()
        except Exception:
            log.exception("closing the client failed")
        if self._sink is not None:
            self._sink.close()

    async def on_unmount(self) -> None:
        await self.shutdown()

    # -- loader and request log events -> messages ---------------------------------------------
    def _on_node(self, key: tuple[str, ...], state: Any) -> None:
        self.post_message(NodeChanged(tuple(key), state))

    def _on_request(self, _record: Any) -> None:
        self.post_message(RequestsChanged())

    def on_node_changed(self, message: NodeChanged) -> None:
        if getattr(message.state, "busy", False):  # NodeState.busy: queued or loading
            self._busy.add(message.key)
        else:
            self._busy.discard(message.key)
        if self._ticker is not None:
            if self._busy:
                self._ticker.resume()
            else:
                self._ticker.pause()
        for screen in self.screen_stack:
            if isinstance(screen, PacsScreen):
                try:
                    screen.node_changed(message.key, message.state)
                except Exception:
                    log.exception("view failed on %s", message.key)

    def _current(self) -> Any:
        """The active screen, or None while the app is starting or shutting down (messages from
        the loader can still arrive then)."""
        return self.screen_stack[-1] if self.screen_stack else None

    def _tick(self) -> None:
        screen = self._current()
        if isinstance(screen, PacsScreen):
            screen.tick()

    def on_requests_changed(self, _message: RequestsChanged) -> None:
        screen = self._current()
        if isinstance(screen, PacsScreen):
            headers = screen.query(ChromeHeader)
            if headers:
                self.show_header(headers.first())
            screen.requests_changed()

    def on_server_info_ready(self, message: ServerInfoReady) -> None:
        self.server_text = message.text
        screen = self._current()
        if isinstance(screen, PacsScreen):
            screen.refresh_chrome()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            log.error("worker %s failed: %s", event.worker.name, event.worker.error)
            # The error text may quote server data: sanitised, and not parsed as markup.
            error = clean(getattr(event.worker.error, "message", None) or event.worker.error, 160)
            self.notify(f"{clean(event.worker.name, 40)}: {error}", severity="error", markup=False)

    # -- chrome --------------------------------------------------------------------------------
    def server_label(self) -> str:
        """Server name and host for the header."""
        server = self.settings.server
        host = urlsplit(server.url).netloc.rpartition("@")[2] if server.url else ""
        if server.name and server.name != "default":
            return f"{server.name} ({host})" if host else server.name
        return host or server.name

    def in_flight(self) -> int:
        """Requests in flight now."""
        return int(getattr(self.request_log, "in_flight", 0) or 0)

    def show_header(self, header: ChromeHeader) -> None:
        """Fill the one-line header."""
        header.show(
            self.server_label(), self.settings.server.user or "", self.server_text, self.in_flight()
        )

    # -- actions -------------------------------------------------------------------------------
    def action_help(self) -> None:
        from tui.app.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
            return
        self.push_screen(HelpScreen(self.screen))

    def action_requests(self) -> None:
        from tui.app.requests import RequestsScreen

        if isinstance(self.screen, RequestsScreen):
            self.pop_screen()
            return
        self.push_screen(RequestsScreen())

    def action_command(self) -> None:
        if isinstance(self.screen, PacsScreen):
            self.screen.open_prompt("command")

    def action_search(self) -> None:
        from tui.app.search import SearchForm

        self.push_screen(SearchForm(), self._search_done)

    def _search_done(self, query: Any) -> None:
        if query is None:
            return
        browse = self.browse_screen()
        while self.screen is not browse and len(self.screen_stack) > 2:
            self.pop_screen()
        if browse is not None:
            browse.new_query(query)

    def browse_screen(self) -> Any:
        """The browse view (bottom of the stack)."""
        from tui.app.browse import BrowseScreen

        return next((s for s in self.screen_stack if isinstance(s, BrowseScreen)), None)

    def action_browse(self) -> None:
        browse = self.browse_screen()
        while browse is not None and self.screen is not browse and len(self.screen_stack) > 2:
            self.pop_screen()

    def run_command_line(self, text: str) -> None:
        """Run a `:` command: requests, search, help, browse, quit."""
        words = text.strip().lstrip(":").split()
        if not words:
            return
        command = words[0].lower()
        table: dict[str, Callable[[], Any]] = {
            "requests": self.action_requests, "req": self.action_requests,
            "search": self.action_search, "find": self.action_search,
            "help": self.action_help, "h": self.action_help,
            "browse": self.action_browse, "b": self.action_browse,
            "quit": self.action_quit, "q": self.action_quit,
        }  # fmt: skip
        action = table.get(command)
        if action is None:
            self.notify(f"unknown command: {clean(command, 30)}", severity="warning", markup=False)
            return
        result = action()
        if result is not None:
            self.run_worker(result, exit_on_error=False)
