"""Run a real shuffler on a loopback port inside this process (demo, tests, simulator, audit),
as ``server.embedded.EmbeddedRelay`` does for the relay."""

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from shuffler.app import Shuffler, create_app
from shuffler.settings import ShufflerSettings


class EmbeddedShuffler:
    """A shuffler served by uvicorn in a background thread; use as a context manager.

    ``url`` is known at once (the port is bound before the server starts), so a relay can be
    told the shuffler's key and URL before either serves. ``wrap`` puts a layer around the app
    (the audit's request recorder).
    """

    def __init__(
        self,
        settings: ShufflerSettings,
        port: int = 0,
        wrap: Callable[[ASGIApp], ASGIApp] | None = None,
    ) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.shuffler: Shuffler = self.app.state.shuffler
        self.served: ASGIApp = wrap(self.app) if wrap else self.app
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # No access log: the shuffler must not write down who sent a report, or when.
        config = uvicorn.Config(
            self.served, log_level="warning", access_log=False, timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            daemon=True,
            name=f"shuffler:{self.port}",
        )

    @property
    def public_key(self) -> str:
        return self.shuffler.public_key

    def forward_ready(self, *, minimum: int | None = None) -> Any:
        """Forward now if at least B (or ``minimum``) reports are held (blocking)."""
        return self.shuffler.forward_ready(minimum=minimum)

    def held(self) -> int:
        return self.shuffler.store.count()

    def start(self) -> "EmbeddedShuffler":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the embedded shuffler did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> "EmbeddedShuffler":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
