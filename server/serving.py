"""Serving the relay with uvicorn, and stopping it gracefully.

On SIGTERM (or Ctrl+C) uvicorn stops accepting connections and waits for the open ones to
finish, for at most its grace period, then cuts them. A delivery stream never finishes on
its own, so every client was cut off mid-response after the grace period. Here the relay is
told at once: its streams end cleanly (the client reconnects, to another relay or to this
one once it is back), and ordinary requests in flight get the whole grace period.
"""

from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

GRACE_S = 10


class RelayServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.relay_app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        state = self.relay_app.state
        state.shutting_down = True
        state.notifier.wake_all()  # each stream sees shutting_down and ends its response
        super().handle_exit(sig, frame)


def serve(app: FastAPI, served: Any = None, **config: Any) -> None:
    """Run ``app`` (or ``served``, a layer around it) until SIGTERM or Ctrl+C."""
    options = {"timeout_graceful_shutdown": GRACE_S, **config}
    RelayServer(uvicorn.Config(served or app, **options), app).run()
