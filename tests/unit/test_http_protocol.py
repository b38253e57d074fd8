"""The relay's HTTP layer (server/http_protocol.py) on a transport of our own, so that each
deadline can be set to milliseconds and its end awaited: the connection's close. The same
limits against a real ``sealpost relay`` over sockets: tests/functional/test_http_limits.py."""

import asyncio
import json
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from server.http_protocol import guarded_protocol


class _Transport(asyncio.Transport):
    """Records what the protocol writes; ``ended`` is set when it closes or aborts."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.ended = asyncio.Event()
        self.aborted = False
        self.protocol: Any = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5555), "sockname": ("127.0.0.1", 8700)}.get(name)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def is_closing(self) -> bool:
        return self.ended.is_set()

    def close(self) -> None:
        self._end()

    def abort(self) -> None:
        self.aborted = True
        self._end()

    def _end(self) -> None:
        if not self.ended.is_set():
            self.ended.set()
            # As asyncio's transports do: the protocol hears of it on the next turn.
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _app(scope: Any, receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _connection(**limits: float) -> tuple[Any, _Transport]:
    settings: dict[str, Any] = {
        "max_head_bytes": 1024,
        "head_timeout_s": 60.0,
        "body_timeout_s": 60.0,
        "max_connections": 10,
        "send_timeout_s": 60.0,
        **limits,
    }
    protocol_class = guarded_protocol(**settings)
    config = Config(app=_app, log_level="warning")
    config.load()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    transport = _Transport()
    transport.protocol = protocol
    protocol.connection_made(transport)
    return protocol, transport


def _status(written: bytes) -> tuple[int, str]:
    head, _, body = written.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)["error"]["code"]


async def _served(protocol: Any) -> None:
    """Until the app's task for the request has answered it."""
    await asyncio.wait_for(asyncio.gather(*protocol.tasks), timeout=30)
    assert protocol.cycle.response_complete


async def _ended(transport: _Transport) -> None:
    await asyncio.wait_for(transport.ended.wait(), timeout=30)  # a guard against a hang


async def test_a_connection_that_sends_nothing_is_closed_without_an_answer() -> None:
    _, transport = _connection(head_timeout_s=0.01)
    await _ended(transport)
    assert transport.written == b""


async def test_half_a_head_gets_408() -> None:
    protocol, transport = _connection(head_timeout_s=0.01)
    protocol.data_received(b"GET /healthz HTTP/1.1\r\nHo")
    await _ended(transport)
    assert _status(transport.written) == (408, "request_timeout")


async def test_half_a_body_gets_408() -> None:
    protocol, transport = _connection(body_timeout_s=0.01)
    protocol.data_received(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345")
    await _ended(transport)
    assert _status(transport.written) == (408, "request_timeout")


async def test_a_head_over_the_cap_gets_431_before_it_ends() -> None:
    protocol, transport = _connection()
    protocol.data_received(b"GET /healthz HTTP/1.1\r\nX-Flood: " + b"a" * 600)
    assert not transport.ended.is_set()  # under the cap so far
    protocol.data_received(b"a" * 600)  # over it, and the header has not even ended
    assert transport.ended.is_set()
    assert _status(transport.written) == (431, "headers_too_large")


async def test_a_served_request_leaves_the_connection_open() -> None:
    protocol, transport = _connection(head_timeout_s=0.05)
    protocol.data_received(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
    await _served(protocol)
    assert transport.written.startswith(b"HTTP/1.1 200")
    assert not transport.ended.is_set()  # the head's deadline ended with the head


async def test_a_client_that_reads_nothing_is_dropped() -> None:
    protocol, transport = _connection(send_timeout_s=0.01)
    protocol.data_received(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
    protocol.pause_writing()  # the transport's buffer passed its high-water mark
    await _ended(transport)
    assert transport.aborted  # the unsent buffer is dropped, not kept until sent


async def test_a_client_that_reads_again_in_time_is_kept() -> None:
    protocol, transport = _connection(send_timeout_s=0.05)
    protocol.pause_writing()
    protocol.resume_writing()
    protocol.data_received(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
    await _served(protocol)
    assert protocol._write_timer is None
    assert not transport.aborted


async def test_connections_beyond_the_cap_get_503() -> None:
    state = ServerState()
    protocol_class = guarded_protocol(
        max_head_bytes=1024,
        head_timeout_s=60,
        body_timeout_s=60,
        max_connections=1,
        send_timeout_s=60,
    )
    config = Config(app=_app, log_level="warning")
    config.load()
    first, second = _Transport(), _Transport()
    for transport in (first, second):
        transport.protocol = protocol_class(config=config, server_state=state, app_state={})
        transport.protocol.connection_made(transport)
    assert not first.ended.is_set()
    assert second.ended.is_set()
    assert _status(second.written) == (503, "server_busy")
    assert b"retry-after: 1" in second.written
