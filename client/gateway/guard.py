"""What every request meets before the gateway reads it: the token check, then a size limit.

FastAPI reads and parses a route's JSON body before it runs the route's dependencies, so a
token checked there is checked only after a client without one has had a body of any size
read into memory and parsed, and its parse errors answered. This layer answers first: no
valid token, the Cloud API's authentication error (190), whatever the path, method or body;
a body over the limit, 413 in the Graph API's shape, without reading what was promised.
"""

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from client.gateway.errors import INVALID_PARAMETER, GraphError, invalid_token
from client.gateway.tokens import TokenBook, presented

# The largest request the Cloud API subset here needs is a template with its parameters or a
# 4,096-character text: a few kilobytes. A quarter of a megabyte leaves room for any of them.
MAX_BODY_BYTES = 256 * 1024


class Guard:
    def __init__(self, app: ASGIApp, tokens: TokenBook, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.tokens = tokens
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan: the gateway starting and stopping
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        token = presented(headers, scope.get("query_string", b"").decode("latin-1"))
        if not token or not self.tokens.valid(token):
            await _answer(send, invalid_token())
            return
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _answer(send, self._too_large())
            return
        # No length said (chunked), or one that lies: counted as it comes, up to the limit.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _answer(send, self._too_large())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return whole
            return await receive()  # after the body: the client's disconnect, if it comes

        await self.app(scope, replay, send)

    def _too_large(self) -> GraphError:
        return GraphError(
            INVALID_PARAMETER,
            "Request too large",
            f"the request body exceeds {self.max_bytes:,} bytes, more than any message or "
            "template the gateway takes",
            status=413,
        )


async def _answer(send: Send, error: GraphError) -> None:
    body = json.dumps(error.body(), separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if error.status == 401:
        headers.append((b"www-authenticate", b'OAuth "Facebook Platform" "invalid_token"'))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
