"""What a request must pass before the app parses its body (#17 item 3).

- **Signed routes**: the Sealpost-* headers' form and the clock window are checked before
  any of the body is read, and the signature as soon as the body has arrived, before it is
  parsed. A 14 MiB batch with a garbage signature used to be parsed and base64-checked first
  (443 ms of the relay's one core); now it costs its sha256. A request for an unknown handle
  is read and hashed like any other (its body is not kept) and refused as a wrong key is, at
  the same moment: answering before its body arrived would tell a probe the handle is free.
  Replay (the nonce) and the rate limit are still checked after the body's shape, with the
  request's work, so a request refused for its shape spends no nonce (protocol §4.5).
- **Anonymous routes** (everything unsigned but ``/healthz`` and the shufflers' signed
  batches): a token bucket per client address and a small body.
- **Requests in flight**, delivery streams not counted: beyond the cap, ``503 server_busy``
  at once, which bounds the memory of bodies being read; and per client address, so that
  one address cannot take every place (``429 rate_limited``).
- **Body size**: a declared ``Content-Length`` over the limit gets ``413`` before anything
  else; a chunked body is read up to the limit and refused with the same ``413`` beyond it.

An ASGI layer outside :mod:`server.hot_routes`, so the lean ack path gets the same checks; the
signature it verified is not verified again (``PRECHECKED`` / ``VERIFIED_WITH``).
"""

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from sqlmodel import Session
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.auth import (
    NOBODY_KEY,
    PRECHECKED,
    VERIFIED_WITH,
    SignedRequest,
    auth_headers,
    check_window,
    signed_path,
    verify_signature,
)
from server.errors import ApiError, error_response
from server.known_accounts import KnownAccount
from server.ratelimit import TokenBuckets, retry_after_header
from server.settings import RelaySettings
from server.transactions import run_read
from shared.auth import signing_string_of_digest

# Long-lived by design and capped per account instead (server/routes/mailbox.py).
_STREAM = re.compile(r"/v1/mailboxes/[^/]+/stream")
# Unsigned, yet not anonymous: liveness for balancers, and the shufflers' batches (signed
# with a shuffler key, checked on the raw bytes before they are parsed).
_UNLIMITED = frozenset({("GET", "/healthz"), ("POST", "/v1/signals/shuffled")})


class _Disconnected(Exception):
    """The client went away while its body was being read."""


class RequestGuard:
    """See the module docstring. ``signed_routes``: (methods, path regex) of every route
    that takes a signed caller."""

    def __init__(
        self,
        app: ASGIApp,
        settings: RelaySettings,
        signed_routes: Iterable[tuple[Iterable[str], re.Pattern[str]]],
        anonymous: TokenBuckets | None,
    ) -> None:
        self.app = app
        self.max_in_flight = settings.max_requests_in_flight
        self.max_body = settings.max_body_bytes
        self.anonymous_body = settings.anonymous_max_body_bytes
        self.anonymous = anonymous  # per client address; None: no limit
        self.in_flight = 0
        self.per_address = settings.max_requests_in_flight_per_address  # 0: no limit
        self._by_address: dict[str, int] = {}  # only addresses with a request in flight
        # One regex per method, all of its signed paths as alternatives: one match a request.
        by_method: dict[str, list[str]] = {}
        for methods, pattern in signed_routes:
            # Starlette's path regexes: ^...$ with named groups, which cannot repeat in one.
            bare = re.sub(r"\(\?P<\w+>", "(?:", pattern.pattern.strip("^$"))
            for method in methods:
                by_method.setdefault(method, []).append(bare)
        self._signed = {m: re.compile("|".join(ps)) for m, ps in by_method.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if method == "GET" and _STREAM.fullmatch(path):
            await self._checked(scope, receive, send, method, path)
            return
        if self.in_flight >= self.max_in_flight:
            busy = error_response(
                503,
                "server_busy",
                f"The relay is serving {self.max_in_flight} requests at once, as many as it "
                "takes; retry in a moment.",
                {"Retry-After": "1"},
            )
            await busy(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        held = self._by_address.get(address, 0)
        if self.per_address and held >= self.per_address:
            crowded = error_response(
                429,
                "rate_limited",
                f"This address has {held} requests in flight, as many as one address may; "
                "retry once they are answered.",
                {"Retry-After": "1"},
            )
            await crowded(scope, receive, send)
            return
        self.in_flight += 1
        self._by_address[address] = held + 1
        try:
            await self._checked(scope, receive, send, method, path)
        finally:
            self.in_flight -= 1
            left = self._by_address[address] - 1
            if left:
                self._by_address[address] = left
            else:
                del self._by_address[address]

    async def _checked(
        self, scope: Scope, receive: Receive, send: Send, method: str, path: str
    ) -> None:
        signed = self._signed.get(method)
        try:
            declared = _declared_length(scope)
            if declared is not None and declared > self.max_body:
                raise _TooLarge(self.max_body)
            if signed is not None and signed.fullmatch(path):
                receive = await self._verified(scope, receive)
            elif (method, path) in _UNLIMITED:
                if declared is None:  # chunked: read here, up to the limit
                    receive = _replay(await _body(receive, self.max_body), receive)
            else:
                receive = await self._anonymous(scope, receive, declared)
        except ApiError as exc:
            answer = error_response(exc.status, exc.code, exc.message, exc.headers)
            await answer(scope, receive, send)
            return
        except _Disconnected:
            return
        await self.app(scope, receive, send)

    async def _verified(self, scope: Scope, receive: Receive) -> Receive:
        """Checks 1-8 of protocol §4.5, the body read only once 1-5 and 8 passed; returns
        the body's replay for the app."""
        state = scope["app"].state
        found = auth_headers(Headers(scope=scope))
        check_window(state, found.timestamp_ms)
        account = state.accounts.cached(found.handle)
        if account is None:
            account = await run_read(state, _load_account, state, found.handle)
        # An unknown handle's body is hashed, not kept, and fails as a wrong key does.
        chunks: list[bytes] | None = [] if account is not None else None
        digest = hashlib.sha256()
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:  # chunked (a declared length was checked already)
                raise _TooLarge(self.max_body)
            digest.update(chunk)
            if chunks is not None:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        signing = signing_string_of_digest(
            scope["method"], signed_path(scope), found.timestamp, found.nonce, digest.hexdigest()
        )
        key = account.sign_key if account is not None else NOBODY_KEY
        verify_signature(signing, found.signature, key)
        scope[PRECHECKED] = SignedRequest(
            handle=found.handle,
            timestamp_ms=found.timestamp_ms,
            nonce=found.nonce,
            signature=found.signature,
            message=signing,
        )
        scope[VERIFIED_WITH] = key
        return _replay(b"".join(chunks or ()), receive)

    async def _anonymous(self, scope: Scope, receive: Receive, declared: int | None) -> Receive:
        """A request to an endpoint that takes no account signature: per-address bucket,
        small body."""
        if self.anonymous is not None:
            client = scope.get("client")
            wait = self.anonymous.take(client[0] if client else "unknown")
            if wait:
                raise ApiError(
                    429,
                    "rate_limited",
                    f"Too many unsigned requests from this address; retry after {wait:.0f} s.",
                    headers=retry_after_header(wait),
                )
        if declared is not None:
            if declared > self.anonymous_body:
                raise _TooLarge(self.anonymous_body)
            return receive
        return _replay(await _body(receive, self.anonymous_body), receive)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value)  # the HTTP layer refused a malformed one
    return None


async def _body(receive: Receive, limit: int) -> bytes:
    """A body without a declared length, read whole; 413 once it passes ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def too_large_message(limit: int) -> str:
    return f"The request body exceeds {limit} bytes; send fewer envelopes per request."


class _TooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "payload_too_large", too_large_message(limit))


def _load_account(state: Any, handle: str) -> KnownAccount | None:
    with Session(state.read_engine) as session:
        return state.accounts.get(session, handle)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the app ``body`` first, then the connection's own events."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
