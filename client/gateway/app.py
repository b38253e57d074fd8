"""The gateway assembled: the business's client core, its state, and the Cloud API's routes.

``Gateway`` holds what one business's gateway runs on; ``create_app`` serves it. While the app
runs, the business's delivery stream is held open (people's replies become ``messages``
webhooks) and queued webhooks are delivered.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from client.gateway.catalog import Catalog
from client.gateway.config import GatewayConfig, MappingWatch
from client.gateway.errors import (
    SOMETHING_WENT_WRONG,
    GraphError,
    from_relay,
    graph_error_handler,
    http_error_handler,
    validation_error_handler,
)
from client.gateway.guard import Guard
from client.gateway.inbound import Inbound
from client.gateway.routes import messages, templates
from client.gateway.sending import Outbound
from client.gateway.state import GatewayState
from client.gateway.tokens import TokenBook
from client.gateway.webhooks import Webhooks
from client.messenger import Messenger
from client.relay_api import RelayError, RelayUnavailable

STATE_FILE = "gateway.db"


class Gateway:
    """One business's gateway: opened on its profile, closed with :meth:`aclose`."""

    def __init__(self, messenger: Messenger, config: GatewayConfig) -> None:
        profile = messenger.profile
        self.messenger = messenger
        self.config = config
        self.state = GatewayState(profile.dir / STATE_FILE)
        self.tokens = TokenBook(profile)
        self.webhooks = Webhooks(config, self.state)
        self.catalog = Catalog(messenger.api, profile.handle, self.state)
        self.outbound = Outbound(messenger, config, self.state, self.webhooks)
        self.mapping = MappingWatch(profile, config)
        self.inbound = Inbound(
            config, self.state, self.webhooks, name_of=self._name_of, refresh=self.mapping.refresh
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def _name_of(self, handle: str) -> str | None:
        contact = self.messenger.store.contact(handle)
        return contact.display_name if contact is not None else None

    async def start(self) -> None:
        """Deliver webhooks and hold the delivery stream open (the webhook endpoint was
        checked before the port was served: client/gateway/server.py)."""
        self._tasks = [
            asyncio.create_task(self.webhooks.run(), name="gateway webhooks"),
            asyncio.create_task(
                self.messenger.listen(self.inbound.on_event, self._stop), name="gateway stream"
            ),
        ]

    async def aclose(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.webhooks.aclose()
        self.state.close()


async def _relay_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RelayError)
    return await graph_error_handler(_, from_relay(exc))


async def _relay_away(_: Request, exc: Exception) -> JSONResponse:
    error = GraphError(
        SOMETHING_WENT_WRONG,
        "Something went wrong",
        f"{exc}; nothing was sent, retry when the relay is back",
        status=503,
    )
    return await graph_error_handler(_, error)


def create_app(gateway: Gateway) -> FastAPI:
    """The Cloud API's routes over ``gateway``, which starts and stops with the app."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.aclose()

    app = FastAPI(
        title="Sealpost business gateway",
        description="A WhatsApp Cloud API-compatible gateway; see docs/gateway.md",
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    handlers: dict[Any, Any] = {
        GraphError: graph_error_handler,
        RequestValidationError: validation_error_handler,
        HTTPException: http_error_handler,
        RelayError: _relay_error,
        RelayUnavailable: _relay_away,
    }
    for kind, handler in handlers.items():
        app.add_exception_handler(kind, handler)
    app.include_router(messages.router)
    app.include_router(templates.router)
    # Outermost: the token and the body's size are checked before FastAPI reads the body.
    app.add_middleware(Guard, tokens=gateway.tokens)
    return app
