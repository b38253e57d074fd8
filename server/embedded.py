"""Run a real relay on a loopback port inside this process (demo, tests, simulator)."""

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

from server.app import create_app
from server.clock import Clock
from server.settings import RelaySettings

LISTEN_BACKLOG = 8192


class EmbeddedRelay:
    """A relay served by uvicorn in a background thread; use as a context manager.

    ``port=0`` picks a free port. ``url`` is set once the server is listening.
    """

    def __init__(
        self,
        settings: RelaySettings,
        clock: Clock | None = None,
        port: int = 0,
        wrap: Callable[[ASGIApp], ASGIApp] | None = None,
    ) -> None:
        # An embedded relay owns its (usually throwaway) database: bring it up to date.
        self.settings = settings.model_copy(update={"auto_migrate": True})
        self.app = create_app(self.settings, clock)
        # What uvicorn serves: the app, or a layer around it (the audit's request recorder).
        self.served: ASGIApp = wrap(self.app) if wrap else self.app
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose
        # listener says TCP explicitly, and without it every response waits ~40 ms (Nagle).
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # A listen queue as long as the kernel allows (net.core.somaxconn caps it): a
        # simulation's thousands of devices connect in bursts, and a full queue drops them.
        config = uvicorn.Config(
            self.served,
            log_level="warning",
            timeout_graceful_shutdown=2,
            lifespan="on",
            backlog=LISTEN_BACKLOG,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            daemon=True,
            name=f"relay:{self.port}",
        )

    def start(self) -> "EmbeddedRelay":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the embedded relay did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.app.state.shutting_down = True
        self.app.state.notifier.wake_all()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
        self.app.state.engine.dispose()

    def __enter__(self) -> "EmbeddedRelay":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
