"""Serving a gateway over HTTP (uvicorn), in the caller's event loop.

The webhook endpoint is checked (``hub.challenge``) before the port is served, so a
misconfigured endpoint stops the gateway with a sentence instead of losing events later.
"""

import asyncio
import socket

import uvicorn

from client.gateway.app import Gateway, create_app


def listening_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A socket already listening: requests made before the server runs wait in its queue
    (no client has to poll for the port)."""
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY only then (else ~40 ms a reply).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


class GatewayServer:
    def __init__(self, gateway: Gateway, sock: socket.socket) -> None:
        self.gateway = gateway
        self.sock = sock
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(
            create_app(gateway), log_level="warning", lifespan="on", timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> "GatewayServer":
        """Check the webhook endpoint, then serve in the background."""
        await self.gateway.webhooks.verify()
        self._task = asyncio.create_task(self._server.serve(sockets=[self.sock]))
        return self

    async def wait(self) -> None:
        """Until the server stops (Ctrl+C)."""
        assert self._task is not None
        await self._task

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self.sock.close()
