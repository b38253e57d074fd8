"""An ASGI guard that refuses request bodies over the configured size before they are parsed."""

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large_response(limit: int) -> dict[str, str]:
    """The error (code and message) for a body over ``limit`` bytes."""
    return {
        "code": "payload_too_large",
        "message": f"The request body exceeds {limit} bytes; send fewer envelopes per request.",
    }


def _too_large(limit: int) -> bytes:
    return json.dumps({"error": too_large_response(limit)}, separators=(",", ":")).encode()


class BodySizeLimit:
    """Checks Content-Length up front; a body without one (chunked) is read up to the limit
    here, so an oversized one gets the same 413 instead of a parse error downstream."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if int(declared) > self.max_bytes:
                await self._reject(send)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        buffered: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return buffered
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send) -> None:
        body = _too_large(self.max_bytes)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
