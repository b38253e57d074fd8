"""The relay's HTTP/1.1 connection handling: uvicorn's httptools protocol with limits on what a
client may do before the app sees its request.

uvicorn's own protocol lets a client send a request head of any size (httptools buffers it
all: a 64 MiB header was read and answered), take forever over it (no timer runs until the
first response), and dribble a body as slowly as it likes. Each of those holds a socket and
memory for free, before any signature could be checked. This subclass adds:

- a cap on the request head (request line and headers), answered ``431`` before more of it
  is buffered;
- a deadline for the head, from the connection's start or the next request's first byte;
- a deadline for the body, from the end of the head;
- a cap on open connections, answered ``503`` at once;
- a deadline for a client that reads nothing of what it asked for: a response (a mailbox
  page of 1,000 envelopes is megabytes) that waits in the relay's memory, the socket's
  buffers full, for ``send_timeout_s`` is dropped with the connection.

Answers are written here, in the relay's error shape, and the connection is closed.

It leans on uvicorn's protocol internals (its parser callbacks, ``cycle``, ``flow``), so
uvicorn is pinned (constraints.txt); tests/unit/test_http_protocol.py exercises each hook and
fails first if an upgrade moves them.
"""

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from shared.api import ErrorBody, ErrorDetail


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head over the cap."""


def _answer(status: int, code: str, message: str, headers: bytes = b"") -> bytes:
    body = ErrorBody(error=ErrorDetail(code=code, message=message)).model_dump()
    payload = json.dumps(body, separators=(",", ":")).encode()
    return b"".join(
        (
            STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(payload)).encode() + b"\r\n",
            headers,
            b"connection: close\r\n\r\n",
            payload,
        )
    )


class GuardedHttpProtocol(HttpToolsProtocol):
    """See the module docstring; :func:`guarded_protocol` sets the limits."""

    max_head_bytes = 16 * 1024
    head_timeout_s = 20.0
    body_timeout_s = 60.0
    max_connections = 10_000
    send_timeout_s = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # reading a request head (or waiting for one to start)
        self._head_received = 0  # bytes received while reading this head (an upper bound)
        self._head_parsed = 0  # bytes of request line and headers parsed (exact)
        self._timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._rejected = False

    # Connection events ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # connections includes this one; more than the cap is refused before any is read.
        if len(self.connections) > self.max_connections:
            self._reject(
                503,
                "server_busy",
                "The relay holds as many connections as it serves; retry in a moment.",
                b"retry-after: 1\r\n",
            )
            return
        # A fresh connection gets no keep-alive timer from uvicorn: without this one, a
        # client that connects and sends nothing (or half a head) holds it for good.
        self._arm(self.head_timeout_s, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._writable()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        # The transport holds more than its high-water mark for the client: it has not read
        # for a while. Paused this long without a break, it is not going to.
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.send_timeout_s, self._send_timed_out)

    def resume_writing(self) -> None:
        self._writable()
        super().resume_writing()

    def _writable(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _send_timed_out(self) -> None:
        self._write_timer = None
        # abort, not close: close would keep the unsent megabytes until they are sent.
        if not self.transport.is_closing():
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return
        if self._in_head:
            self._head_received += len(data)
        super().data_received(data)
        if self._rejected:
            return
        # The head has not ended, yet more than the cap arrived for it: refuse now rather
        # than let the parser buffer a head of any size (it keeps a header value whole).
        if self._in_head and self._head_received > self.max_head_bytes:
            self._head_too_large()

    def send_400_response(self, msg: str) -> None:
        # The parser stopped on our callback's exception (it wraps it in a parser error):
        # the answer is the 431 already written, not uvicorn's 400.
        if self._rejected:
            return
        super().send_400_response(msg)

    # Parser callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_parsed = 0
        if self._timer is None:  # a kept-alive connection's next request: the head's clock
            self._arm(self.head_timeout_s, self._head_timed_out)

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_received = 0
        self._disarm()
        # Until the body has arrived: a GET's message completes right after this.
        self._arm(self.body_timeout_s, self._body_timed_out)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        self._head_received = 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # Answered before its body arrived (a refusal from the headers alone: 401, 413,
        # 429): close rather than read and discard a body of any size, at any pace.
        if self.cycle is not None and self.cycle.more_body:
            self._close()
        super().on_response_complete()

    # Limits ----------------------------------------------------------------------------------

    def _count(self, size: int) -> None:
        self._head_parsed += size
        if self._head_parsed > self.max_head_bytes:
            self._head_too_large()
            raise _HeadTooLarge  # stops the parser; see send_400_response

    def _head_too_large(self) -> None:
        self._reject(
            431,
            "headers_too_large",
            f"The request line and headers exceed {self.max_head_bytes} bytes.",
        )

    def _head_timed_out(self) -> None:
        self._timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a response is being made; the app's own time, not the client's
        if self._head_received or self._head_parsed:
            self._reject(
                408,
                "request_timeout",
                f"The request's headers did not arrive within {self.head_timeout_s:g} s.",
            )
        else:
            self._close()  # nothing was asked: nothing to answer

    def _body_timed_out(self) -> None:
        self._timer = None
        cycle = self.cycle
        if cycle is None or not cycle.more_body:
            return
        if cycle.response_started:
            self._close()
            return
        # The app, waiting for the rest of the body, is told the client went away; nothing
        # it does after this reaches the socket.
        cycle.disconnected = True
        cycle.message_event.set()
        self._reject(
            408,
            "request_timeout",
            f"The request body did not arrive within {self.body_timeout_s:g} s of its headers.",
        )

    def _reject(self, status: int, code: str, message: str, headers: bytes = b"") -> None:
        self._rejected = True
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_answer(status, code, message, headers))
        self._close()

    def _close(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.close()

    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def guarded_protocol(
    *,
    max_head_bytes: int,
    head_timeout_s: float,
    body_timeout_s: float,
    max_connections: int,
    send_timeout_s: float,
) -> type[GuardedHttpProtocol]:
    """The protocol class to give uvicorn (``http=``), with these limits."""
    return type(
        "RelayHttpProtocol",
        (GuardedHttpProtocol,),
        {
            "max_head_bytes": max_head_bytes,
            "head_timeout_s": head_timeout_s,
            "body_timeout_s": body_timeout_s,
            "max_connections": max_connections,
            "send_timeout_s": send_timeout_s,
        },
    )
